"""Weights to and from ``safetensors``, the file format the ecosystem uses to share
weights without code, written and read here with NumPy alone.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
array's dtype, shape and byte range, then the raw little-endian bytes of the arrays one
after another. Nothing in it is executed on load, so a file from anywhere is safe to read.
Arrays are stored under their ``state_dict`` names ("0.weight", "2.bias", ...), so
``model.load_state_dict(load_safetensors(path))`` restores a model, here or in any
library that names its layers the same way.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..errors import CheckpointError
from ..tensor import Tensor

# safetensors dtype names <-> NumPy dtypes (bfloat16 has no NumPy dtype and is refused)
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
           "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
           "BOOL": "?"}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 2**20  # the header is JSON text; a larger one means a damaged file


def save_safetensors(weights, path, metadata=None) -> Path:
    """Write ``weights`` to ``path`` (atomically) in the safetensors format.

    ``weights`` is a Module (its ``state_dict()`` is written) or a mapping of names to
    arrays or Tensors of any shape. ``metadata`` is an optional dict of strings to strings
    stored in the header (safetensors allows nothing else there). Returns the path.
    """
    if hasattr(weights, "state_dict") and callable(weights.state_dict):
        weights = weights.state_dict()
    if not hasattr(weights, "items"):
        raise CheckpointError(f"save_safetensors: expected a Module or a mapping of names to "
                              f"arrays, got {type(weights).__name__}")
    header, blobs, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise CheckpointError("save_safetensors: metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    for name, value in weights.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise CheckpointError(f"save_safetensors: {name!r} cannot name an array; names "
                                  "are strings other than '__metadata__'")
        array = value.data if isinstance(value, Tensor) else np.asarray(value)
        kind = _NAMES.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">"
                          else array.dtype)
        if kind is None:
            raise CheckpointError(f"save_safetensors: {name} has dtype {array.dtype}, which "
                                  "safetensors cannot hold (use a float or integer dtype)")
        data = np.ascontiguousarray(array, dtype=_DTYPES[kind]).tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keeps the arrays 8-byte aligned, as the format advises
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    return path


def _read(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"load_safetensors: no file at {path}")
    raw = path.read_bytes()
    if len(raw) < 8:
        raise CheckpointError(f"load_safetensors: {path} is too short to be a safetensors file")
    (size,) = struct.unpack("<Q", raw[:8])
    if size > min(_MAX_HEADER, len(raw) - 8):
        raise CheckpointError(f"load_safetensors: {path} is truncated or not a safetensors "
                              f"file (its header claims {size} bytes)")
    try:
        header = json.loads(raw[8:8 + size])
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"load_safetensors: {path} has a header that is not JSON; it "
                              "is not a safetensors file") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load_safetensors: {path} has a malformed header")
    return path, header, memoryview(raw)[8 + size:]


def load_safetensors(path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file by name, as writable NumPy arrays, in file order.

    Raises ``CheckpointError`` for a missing, truncated or malformed file, naming the
    array that is wrong.
    """
    path, header, buffer = _read(path)
    arrays = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[entry["dtype"]])
            shape = tuple(int(s) for s in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"load_safetensors: {path}: the entry for {name!r} is "
                                  "malformed or has a dtype NumPy cannot hold (e.g. BF16)"
                                  ) from None
        count = int(np.prod(shape, dtype=np.int64))
        if (min(shape, default=0) < 0 or not 0 <= begin <= end <= len(buffer)
                or end - begin != count * dtype.itemsize):
            raise CheckpointError(f"load_safetensors: {path}: {name!r} claims shape {shape} "
                                  f"and bytes {begin}..{end}, which do not fit the file")
        arrays[name] = np.frombuffer(buffer[begin:end], dtype=dtype).reshape(shape).astype(
            dtype.newbyteorder("="))
    return arrays


def load_safetensors_metadata(path) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (empty if it has none)."""
    _, header, _ = _read(path)
    return dict(header.get("__metadata__") or {})
