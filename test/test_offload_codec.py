"""offload_codec: model inputs <-> OffloadTensor messages, and the checks a base station makes on
them (a request is untrusted input). Pure: no ROS spinning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sentryfuse.msg import OffloadTensor
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.data.recorded import input_shapes
from sentryfuse_ros.data.spec import IMU_AXES, INPUT_SPEC, InputSpec
from sentryfuse_ros.nodes.offload_codec import ENCODINGS, INT8_LEVELS, decode_inputs, encode_inputs

MODALITIES = INPUT_SPEC.modalities  # camera, imu, audio
IMU_ONLY = InputSpec(modalities=("imu",), class_names=("rest", "walk", "run"), imu_rate_hz=50.0,
                     imu_window_samples=150, imu_axes=IMU_AXES[:3])


def model_inputs(spec: InputSpec = INPUT_SPEC, seed: int = 0, magnitude: float = 3.0) -> dict[str, torch.Tensor]:
    """Batch-1 inputs of every modality of `spec`, canonical order, normal-ish values."""
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn((1, *shape), generator=generator) * magnitude
            for name, shape in input_shapes(spec).items()}


def one(name: str, encoding: str = "float16", spec: InputSpec = INPUT_SPEC) -> OffloadTensor:
    """A valid encoded tensor of modality `name` (to be broken by a test)."""
    return encode_inputs({name: model_inputs(spec)[name]}, encoding)[0]


def rejected(tensors, spec: InputSpec = INPUT_SPEC) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_inputs(tensors, spec)
    return str(caught.value)


def wire(tensor: OffloadTensor) -> OffloadTensor:
    """The tensor as a subscriber gets it: serialized (scale rounded to float32) and back."""
    from rclpy.serialization import deserialize_message, serialize_message

    return deserialize_message(serialize_message(tensor), OffloadTensor)


# --- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODALITIES)
def test_float16_round_trip_is_exact_to_float16_precision(name):
    original = model_inputs()[name]
    decoded = decode_inputs(encode_inputs({name: original}, "float16"), INPUT_SPEC)
    assert list(decoded) == [name]
    value = decoded[name]
    assert value.dtype == torch.float32 and value.shape == original.shape == (1, *input_shapes(INPUT_SPEC)[name])
    # Exactly what float16 rounding gives, and so within half a float16 ulp (2^-11 relative).
    assert torch.equal(value, original.to(torch.float16).to(torch.float32))
    error = (value - original).abs()
    assert bool((error <= original.abs() * 2.0 ** -11 + 2.0 ** -25).all()), float(error.max())


@pytest.mark.parametrize("name", MODALITIES)
def test_int8_round_trip_is_within_half_a_step(name):
    original = model_inputs()[name]
    [tensor] = encode_inputs({name: original}, "int8")
    peak = float(original.abs().max())
    assert tensor.scale == pytest.approx(peak / INT8_LEVELS, rel=1e-6)
    for received in (tensor, wire(tensor)):  # in process, and after serialization (float32 scale)
        value = decode_inputs([received], INPUT_SPEC)[name]
        assert value.shape == original.shape and value.dtype == torch.float32
        error = (value - original).abs().max().item()
        assert error <= tensor.scale / 2 * (1 + 1e-5) + 1e-7, (error, tensor.scale)
        # The largest magnitude maps to +-127 steps: the peak survives (to float32 rounding).
        assert value.abs().max().item() == pytest.approx(peak, rel=1e-5)
    levels = np.frombuffer(bytes(tensor.data), np.int8)
    assert levels.min() >= -INT8_LEVELS and levels.max() <= INT8_LEVELS


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_all_zero_tensor_round_trips_exactly_with_a_usable_scale(encoding):
    zeros = torch.zeros((1, *input_shapes(INPUT_SPEC)["imu"]))
    [tensor] = encode_inputs({"imu": zeros}, encoding)
    assert math.isfinite(tensor.scale) and tensor.scale > 0  # never a 0 scale the decoder would refuse
    for received in (tensor, wire(tensor)):
        decoded = decode_inputs([received], INPUT_SPEC)["imu"]
        assert torch.equal(decoded, zeros)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_whole_request_round_trips_over_the_wire(encoding):
    inputs = model_inputs(seed=3)
    decoded = decode_inputs([wire(tensor) for tensor in encode_inputs(inputs, encoding)], INPUT_SPEC)
    assert list(decoded) == list(MODALITIES)
    tolerance = 2e-3 if encoding == "float16" else None
    for name, original in inputs.items():
        if tolerance is not None:
            torch.testing.assert_close(decoded[name], original, rtol=tolerance, atol=1e-6)
        else:
            step = float(original.abs().max()) / INT8_LEVELS
            assert (decoded[name] - original).abs().max().item() <= step / 2 * (1 + 1e-5) + 1e-7


def test_encode_keeps_the_given_order_and_decode_returns_canonical_order():
    inputs = model_inputs()
    reversed_inputs = {name: inputs[name] for name in reversed(MODALITIES)}
    tensors = encode_inputs(reversed_inputs, "float16")
    assert [t.modality for t in tensors] == ["audio", "imu", "camera"]
    decoded = decode_inputs(tensors, INPUT_SPEC)
    assert list(decoded) == ["camera", "imu", "audio"]
    # A subset keeps its canonical order too.
    assert list(decode_inputs(encode_inputs({"audio": inputs["audio"], "camera": inputs["camera"]}, "int8"),
                              INPUT_SPEC)) == ["camera", "audio"]


@pytest.mark.parametrize("encoding,itemsize", [("float16", 2), ("int8", 1)])
def test_payload_size_shape_and_encoding_fields(encoding, itemsize):
    inputs = model_inputs()
    tensors = encode_inputs(inputs, encoding)
    for tensor, (name, value) in zip(tensors, inputs.items()):
        assert tensor.modality == name
        assert list(tensor.shape) == [1, *input_shapes(INPUT_SPEC)[name]]
        assert tensor.encoding == ENCODINGS[encoding]
        assert len(bytes(tensor.data)) == value.numel() * itemsize
        if encoding == "float16":
            assert tensor.scale == 1.0
    total = sum(len(bytes(t.data)) for t in tensors)
    numel = sum(v.numel() for v in inputs.values())
    assert total == numel * itemsize
    # The module docstring's figure for the digits task: about 12 KB in float16, half that in int8.
    assert numel == 28 * 28 + 6 * 200 + 40 * 101 and total == 12048 // (2 // itemsize)


def test_float16_data_is_little_endian_ieee_half():
    value = torch.tensor([1.0, -2.0, 0.5, 65504.0])
    tensor = encode_inputs({"x": value.reshape(1, 4)}, "float16")[0]
    assert bytes(tensor.data) == np.array([1.0, -2.0, 0.5, 65504.0], dtype="<f2").tobytes()


# --- rejections ------------------------------------------------------------------------------
def test_unknown_modality_is_rejected_by_name():
    tensor = one("imu")
    tensor.modality = "lidar"
    message = rejected([tensor])
    assert "'lidar'" in message and "not one of this model's inputs" in message
    assert all(name in message for name in MODALITIES)


def test_duplicate_modality_is_rejected():
    message = rejected([one("camera"), one("imu"), one("camera")])
    assert "'camera'" in message and "twice" in message


@pytest.mark.parametrize("shape", [
    [1, 1, 28, 27],  # one column short
    [2, 1, 28, 28],  # batch 2
    [1, 28, 28],  # no batch dimension
    [1, 3, 28, 28],  # RGB for a grayscale task
    [],
])
def test_wrong_shape_is_rejected_with_both_shapes(shape):
    tensor = one("camera")
    tensor.shape = shape
    message = rejected([tensor])
    assert message.startswith("camera:") and "shape" in message
    assert str(shape) in message and "[1, 1, 28, 28]" in message


def test_unknown_encoding_is_rejected():
    tensor = one("audio")
    tensor.encoding = 7
    message = rejected([tensor])
    assert message.startswith("audio:") and "unknown encoding 7" in message


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("change", [-1, +1, "empty", "double"])
def test_wrong_byte_count_is_rejected(encoding, change):
    tensor = one("imu", encoding)
    data = bytes(tensor.data)
    expected = len(data)
    data = {-1: data[:-1], +1: data + b"\0", "empty": b"", "double": data + data}[change]
    tensor.data = data
    message = rejected([tensor])
    assert message.startswith("imu:") and f"{len(data)} bytes, expected {expected}" in message


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_non_positive_or_non_finite_scale_is_rejected(scale, encoding):
    tensor = one("imu", encoding)
    tensor.scale = scale
    message = rejected([tensor])
    assert message.startswith("imu:") and "scale must be a positive number" in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float16_values_are_rejected(bad):
    tensor = one("camera")
    values = np.frombuffer(bytes(tensor.data), "<f2").copy()
    values[123] = bad
    tensor.data = values.tobytes()
    message = rejected([tensor])
    assert message.startswith("camera:") and "finite" in message


def test_float16_overflow_at_encode_is_caught_at_decode():
    """A value past float16's range becomes inf in the message: the base station refuses it."""
    inputs = {"imu": torch.full((1, *input_shapes(INPUT_SPEC)["imu"]), 1e6)}
    message = rejected(encode_inputs(inputs, "float16"))
    assert "finite" in message


def test_int8_scale_that_overflows_float32_is_rejected():
    """A finite scale whose product with the levels is inf in float32 still yields no inf input."""
    tensor = one("imu", "int8")
    tensor.scale = 3e38  # finite, positive; 127 * 3e38 overflows float32
    message = rejected([tensor])
    assert message.startswith("imu:") and "finite" in message


def test_empty_request_is_rejected():
    assert "no input" in rejected([])


def test_a_bad_tensor_rejects_the_whole_request_even_after_good_ones():
    broken = one("audio")
    broken.data = bytes(broken.data)[:-2]
    message = rejected([one("camera"), one("imu"), broken])
    assert message.startswith("audio:")


def test_subset_spec_accepts_its_own_inputs_and_rejects_others():
    inputs = model_inputs(IMU_ONLY)
    assert list(inputs) == ["imu"] and inputs["imu"].shape == (1, 3, 150)
    decoded = decode_inputs(encode_inputs(inputs, "int8"), IMU_ONLY)
    assert list(decoded) == ["imu"]

    message = rejected([one("camera")], IMU_ONLY)
    assert "'camera'" in message and "['imu']" in message
    # The digits task's IMU input (6 axes, 200 samples) is not this task's.
    message = rejected([one("imu")], IMU_ONLY)
    assert "[1, 6, 200]" in message and "[1, 3, 150]" in message
    # ...and a valid IMU tensor next to a camera one still fails (nothing is silently dropped).
    assert "'camera'" in rejected(encode_inputs(inputs, "float16") + [one("camera")], IMU_ONLY)
