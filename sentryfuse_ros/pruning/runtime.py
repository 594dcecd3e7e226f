"""Forward runtimes for one cached plan, eager torch or ONNX Runtime, picked by measuring them.

At batch 1 SentryAttend's eager forward is mostly torch's per-op dispatch (about 1.4 ms for
the shipped model here, and a plan pruned to half its heads and channels is barely faster).
ONNX Runtime runs the same plan, exported by onnx_export.py, in about 0.3 ms and keeps more of
what pruning removes.

A runtime takes the plan's inputs (modality name -> (1, ...) float32 tensor; only the plan's
subset is read, so extra entries are ignored) and returns the logits (1, n_classes) as a torch
tensor. The ONNX runtime is batch-1 only: batched offline work keeps using the torch model.

`choose_runtime` builds the candidates a policy allows and checks each against the eager plan
on a fixed probe input (deterministic random draws at the model's own input statistics, so the
logits have realistic scale): a candidate that fails to build, or whose logits differ by more
than TOLERANCE, is rejected with a logged reason and eager stays, so a broken runtime never
stops inference. Policy "auto" then times every accepted candidate for TIMED_FORWARDS
interleaved batch-1 forwards (median of perf_counter: wall time is what a tick pays, including
work on helper threads) and keeps the fastest, stopping after the first third when one is at
least CLEAR_WIN times faster. Every plan is measured on its own rather than once for all: that
costs about 20 ms a plan (60 ms without a clear winner) against about 140 ms for the export
every plan needs anyway, and one plan's winner need not be another's. All 28 plans of the
node (7 subsets x ratios 0.0, 0.2, 0.4, 0.6) build, export and choose in about 4.5 s on two
cores; the first plan also pays about 0.7 s for importing onnxruntime and the exporter.

There is no TorchScript (torch.jit.trace + freeze) candidate: it ran the shipped model in
0.6-1.2 ms, never close to ONNX Runtime, and TorchScript is deprecated.

The eager candidate runs at the process's torch thread count (torch.set_num_threads, which the
inference node sets); ONNX Runtime sessions get `num_threads` intra-op threads each, never
spinning while idle (spinning threads burn CPU between ticks).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from sentryfuse_ros.model.sentry_attend import SentryAttend
from sentryfuse_ros.pruning.onnx_export import export_onnx

RUNTIMES = ("eager", "onnxruntime")
POLICIES = ("auto", *RUNTIMES)
TOLERANCE = 1e-4  # max abs logit difference from the eager plan
TIMED_FORWARDS = 30
TIMING_ROUNDS = 3  # the timed forwards alternate between candidates in this many rounds
CLEAR_WIN = 2.0  # a candidate this many times faster than every other after a round wins at once

log = logging.getLogger(__name__)


class ForwardRuntime(Protocol):
    name: str
    build_ms: float

    def __call__(self, inputs: Mapping[str, Tensor]) -> Tensor: ...


class EagerRuntime:
    name = "eager"

    def __init__(self, model: SentryAttend, subset: tuple[str, ...]):
        self.model, self.subset = model, subset
        self.build_ms = 0.0  # the sliced model is all it needs

    def __call__(self, inputs: Mapping[str, Tensor]) -> Tensor:
        with torch.inference_mode():
            return self.model({name: inputs[name] for name in self.subset})


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, model: SentryAttend, subset: tuple[str, ...], num_threads: int = 1):
        # Imported here: eager-only users (offline evaluation) never load it.
        import onnxruntime

        started = time.perf_counter()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            export_onnx(model, subset), options, providers=["CPUExecutionProvider"]
        )
        self.subset = subset
        self.build_ms = (time.perf_counter() - started) * 1e3

    def __call__(self, inputs: Mapping[str, Tensor]) -> Tensor:
        # numpy() and from_numpy() share memory: the inputs and the logits are not copied.
        (logits,) = self.session.run(None, {name: inputs[name].numpy() for name in self.subset})
        return torch.from_numpy(logits)


def build_runtime(name: str, model: SentryAttend, subset: tuple[str, ...], num_threads: int = 1) -> ForwardRuntime:
    if name == "eager":
        return EagerRuntime(model, subset)
    if name == "onnxruntime":
        return OnnxRuntime(model, subset, num_threads)
    raise ValueError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")


@dataclass
class RuntimeChoice:
    runtime: ForwardRuntime
    # Median batch-1 forward per accepted candidate (policy "auto" only).
    timings_ms: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)  # candidate -> why
    build_ms: float = 0.0  # building, checking and timing every candidate


def probe_inputs(model: SentryAttend, subset: tuple[str, ...], seed: int = 0) -> dict[str, Tensor]:
    """Batch-1 inputs of the right shapes, drawn at the model's input statistics."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    for name in subset:
        tokenizer = model.tokenizers[name]
        noise = torch.randn(1, *tokenizer.sample_shape, generator=generator)
        inputs[name] = tokenizer.input_mean + tokenizer.input_std * noise
    return inputs


def choose_runtime(
    model: SentryAttend, subset: tuple[str, ...], policy: str = "auto", num_threads: int = 1
) -> RuntimeChoice:
    """The runtime `policy` asks for (or the fastest accepted one, for "auto"); eager if it fails."""
    if policy not in POLICIES:
        raise ValueError(f"unknown runtime policy {policy!r}; choose from {', '.join(POLICIES)}")
    started = time.perf_counter()
    eager = EagerRuntime(model, subset)
    if policy == "eager":
        return RuntimeChoice(eager)
    probe = probe_inputs(model, subset)
    reference = eager(probe)
    accepted, rejected = [eager], {}
    for name in RUNTIMES[1:] if policy == "auto" else (policy,):
        try:
            candidate = build_runtime(name, model, subset, num_threads)
            reason = _disagreement(candidate(probe), reference)
        except Exception as error:  # any failure only costs this candidate, never the plan
            reason = f"build or first run failed: {type(error).__name__}: {error}"
        if reason is None:
            accepted.append(candidate)
        else:
            rejected[name] = reason
            log.warning("runtime %s rejected for %s, using eager: %s", name, "+".join(subset), reason)
    timings = _median_ms(accepted, probe) if policy == "auto" and len(accepted) > 1 else {}
    runtime = min(accepted, key=lambda runtime: timings[runtime.name]) if timings else accepted[-1]
    return RuntimeChoice(runtime, timings, rejected, (time.perf_counter() - started) * 1e3)


def _disagreement(logits: Tensor, reference: Tensor) -> str | None:
    if logits.shape != reference.shape:
        return f"logits of shape {tuple(logits.shape)}, eager gives {tuple(reference.shape)}"
    difference = (logits - reference).abs().max().item()
    if not difference <= TOLERANCE:  # also catches NaN
        return f"logits differ from eager by {difference:.3g} (tolerance {TOLERANCE:g})"
    return None


def _median_ms(runtimes: list[ForwardRuntime], inputs: dict[str, Tensor]) -> dict[str, float]:
    """Median forward time of each runtime, rounds interleaved so load changes hit all alike.

    A clear winner after a round ends the timing: the slow candidate's forwards are most of
    what measuring costs, and more of them would not change the choice."""
    seconds: dict[str, list[float]] = {runtime.name: [] for runtime in runtimes}
    for runtime in runtimes:
        runtime(inputs)  # warm-up: first-call allocations
    for _ in range(TIMING_ROUNDS):
        for runtime in runtimes:
            for _ in range(TIMED_FORWARDS // TIMING_ROUNDS):
                start = time.perf_counter()
                runtime(inputs)
                seconds[runtime.name].append(time.perf_counter() - start)
        medians = sorted(statistics.median(values) for values in seconds.values())
        if medians[1] >= CLEAR_WIN * medians[0]:
            break
    return {name: statistics.median(values) * 1e3 for name, values in seconds.items()}
