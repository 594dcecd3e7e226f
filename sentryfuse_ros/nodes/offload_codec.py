"""Model inputs <-> OffloadTensor messages: what crosses the link to the base station.

The robot sends the tensors its own model took (preprocessing stays on the robot, where the
sensors are), as float16 (exact to ~1e-3 relative, about 12 KB for the digits task's three
inputs) or int8 with one symmetric scale per tensor (half that). The base station checks every
tensor against its own task's shapes before its model sees it: a request is untrusted input.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sentryfuse.msg import OffloadTensor
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.data.recorded import input_shapes
from sentryfuse_ros.data.spec import InputSpec

ENCODINGS = {"float16": OffloadTensor.ENCODING_FLOAT16, "int8": OffloadTensor.ENCODING_INT8}
_DTYPES = {OffloadTensor.ENCODING_FLOAT16: np.dtype("<f2"), OffloadTensor.ENCODING_INT8: np.dtype("i1")}
INT8_LEVELS = 127  # symmetric: -127..127, so that 0 is exact and the scale is max|x| / 127


def encode_inputs(inputs: dict[str, torch.Tensor], encoding: str) -> list[OffloadTensor]:
    """One OffloadTensor per model input, in the order given (canonical modality order)."""
    code = ENCODINGS[encoding]
    encoded = []
    for name, tensor in inputs.items():
        values = tensor.detach().to(torch.float32).numpy()
        scale = 1.0
        if code == OffloadTensor.ENCODING_INT8:
            peak = float(np.abs(values).max()) if values.size else 0.0
            scale = peak / INT8_LEVELS if peak > 0 else 1.0
            data = np.clip(np.rint(values / scale), -INT8_LEVELS, INT8_LEVELS).astype(_DTYPES[code])
        else:
            data = values.astype(_DTYPES[code])
        encoded.append(OffloadTensor(modality=name, shape=list(values.shape), encoding=code, scale=scale,
                                     data=data.tobytes()))
    return encoded


def decode_inputs(tensors, spec: InputSpec) -> dict[str, torch.Tensor]:
    """The model inputs of a request for a model of task `spec`; InvalidInput naming what is wrong."""
    expected = input_shapes(spec)
    inputs: dict[str, torch.Tensor] = {}
    for tensor in tensors:
        name = tensor.modality
        if name not in expected:
            raise InvalidInput(f"input {name!r} is not one of this model's inputs {list(expected)}")
        if name in inputs:
            raise InvalidInput(f"input {name!r} sent twice")
        shape = tuple(int(size) for size in tensor.shape)
        if shape != (1, *expected[name]):
            raise InvalidInput(f"{name}: shape {list(shape)}, expected {[1, *expected[name]]}")
        dtype = _DTYPES.get(tensor.encoding)
        if dtype is None:
            raise InvalidInput(f"{name}: unknown encoding {tensor.encoding} (known: {sorted(_DTYPES)})")
        data = bytes(tensor.data)
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise InvalidInput(f"{name}: {len(data)} bytes, expected {math.prod(shape) * dtype.itemsize} "
                               f"for shape {list(shape)}")
        if not (math.isfinite(tensor.scale) and tensor.scale > 0):
            raise InvalidInput(f"{name}: scale must be a positive number, got {tensor.scale}")
        values = np.frombuffer(data, dtype).astype(np.float32).reshape(shape)
        if tensor.encoding == OffloadTensor.ENCODING_INT8:
            values = values * np.float32(tensor.scale)
        if not np.isfinite(values).all():
            raise InvalidInput(f"{name}: values must be finite")
        inputs[name] = torch.from_numpy(values)
    if not inputs:
        raise InvalidInput("the request carries no input")
    return {name: inputs[name] for name in spec.modalities if name in inputs}  # canonical order
