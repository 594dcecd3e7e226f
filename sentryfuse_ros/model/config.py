"""SentryAttend's configuration: everything needed to rebuild the network from a JSON file.

Layers are uniform by default (n_heads, n_kv_groups, ffn_dim). A structurally pruned model
describes each layer explicitly in `layers` (its own head count, head -> K/V group map and FFN
width), so a sliced network saves and loads through the same format.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec

ATTENTION_KINDS = ("sparse_gqa", "dense_mha")


@dataclass(frozen=True)
class LayerShape:
    """The prunable widths of one encoder layer."""

    n_heads: int
    n_kv_groups: int
    # head_group[h] is the K/V group query head h reads; every group is used by some head.
    head_group: tuple[int, ...]
    ffn_dim: int

    def __post_init__(self):
        if self.n_heads < 0 or self.ffn_dim < 0:
            raise ValueError(f"negative width in {self}")
        if len(self.head_group) != self.n_heads:
            raise ValueError(f"head_group has {len(self.head_group)} entries for {self.n_heads} heads")
        if self.n_heads and sorted(set(self.head_group)) != list(range(self.n_kv_groups)):
            raise ValueError(f"head_group {self.head_group} must use exactly the groups 0..{self.n_kv_groups - 1}")
        if not self.n_heads and self.n_kv_groups:
            raise ValueError("a layer without query heads cannot keep K/V groups")


@dataclass(frozen=True)
class SentryAttendConfig:
    attention: str = "sparse_gqa"
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 8
    n_kv_groups: int = 2
    head_dim: int = 8
    ffn_dim: int = 128
    # Patch sizes: camera (rows, cols) of the image, IMU samples per token,
    # audio (mel bins, frames) of the log-mel spectrogram: full-band slices of 4 frames.
    camera_patch: tuple[int, int] = (7, 7)
    imu_patch: int = 20
    audio_patch: tuple[int, int] = (40, 4)
    # Hidden width of the MLP that turns a whole modality signal into its summary token. Narrow on
    # purpose: at 128 these MLPs held 88% of the parameters and most of the evidence, outside
    # every prunable head and channel, so pruning the encoder barely changed anything.
    summary_hidden: int = 8
    dropout: float = 0.1
    # The task: modalities, classes and input shapes (the digits benchmark unless trained on
    # another dataset). The tokenizers and the classifier are built from it.
    input: InputSpec = INPUT_SPEC
    # Explicit per-layer shapes (pruned models); None means n_layers uniform layers.
    layers: tuple[LayerShape, ...] | None = None

    def __post_init__(self):
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.n_kv_groups < 1 or self.n_heads % self.n_kv_groups:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_groups={self.n_kv_groups}")
        if self.attention == "dense_mha" and self.n_kv_groups != self.n_heads:
            raise ValueError("dense_mha gives every head its own K/V: n_kv_groups must equal n_heads")
        if self.layers is not None and len(self.layers) != self.n_layers:
            raise ValueError(f"{len(self.layers)} layer shapes given for n_layers={self.n_layers}")

    @property
    def n_classes(self) -> int:
        return self.input.n_classes

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.input.modalities

    def layer_shapes(self) -> tuple[LayerShape, ...]:
        if self.layers is not None:
            return self.layers
        heads_per_group = self.n_heads // self.n_kv_groups
        uniform = LayerShape(
            n_heads=self.n_heads,
            n_kv_groups=self.n_kv_groups,
            head_group=tuple(h // heads_per_group for h in range(self.n_heads)),
            ffn_dim=self.ffn_dim,
        )
        return (uniform,) * self.n_layers

    def dense_twin(self) -> SentryAttendConfig:
        """Same width and depth with full multi-head attention: one K/V per head, no sparsity."""
        return replace(self, attention="dense_mha", n_kv_groups=self.n_heads, layers=None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SentryAttendConfig:
        """Inverse of to_dict (JSON lists become tuples); unknown or ill-typed fields raise ValueError."""
        known = {field.name for field in fields(cls)} | {"n_classes"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        values = dict(values)
        # Checkpoints written before the spec was stored are of the digits benchmark.
        legacy_classes = values.pop("n_classes", None)
        try:
            values["input"] = InputSpec.from_dict(values["input"]) if "input" in values else INPUT_SPEC
        except ValueError as error:
            raise ValueError(f"malformed config: {error}") from error
        if legacy_classes is not None and legacy_classes != values["input"].n_classes:
            raise ValueError(f"n_classes={legacy_classes} but the input spec names {values['input'].n_classes} classes")
        try:
            for name in ("camera_patch", "audio_patch"):
                if name in values:
                    values[name] = tuple(values[name])
            if values.get("layers") is not None:
                values["layers"] = tuple(
                    LayerShape(**{**layer, "head_group": tuple(layer["head_group"])}) for layer in values["layers"]
                )
            return cls(**values)
        except (TypeError, KeyError) as error:
            raise ValueError(f"malformed config: {error}") from error

