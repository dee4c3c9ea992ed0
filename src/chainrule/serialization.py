"""``save`` and ``load``: checkpoints with no pickle in them.

A checkpoint is a zip archive holding ``structure.json`` (the nesting of dicts, lists and
numbers, in order, with integer keys kept as integers) and one ``.npy`` file per array,
read back with ``allow_pickle=False``. Loading a checkpoint therefore never runs code,
whoever made the file. Files are written atomically: a crash mid-write leaves the old
checkpoint in place.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .errors import CheckpointError
from .tensor import Tensor

FORMAT, VERSION = "chainrule-checkpoint", 1
_STRUCTURE = "structure.json"
_PLAIN_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex
_MAX_NPY_HEADER = 10_000
_READ_PIECE = 1 << 22
_MAX_INT_BITS = 4096  # JSON (and Python) refuse integers of more than 4300 digits


def save(obj, path) -> Path:
    """Write ``obj`` (nested dicts, lists and tuples of arrays, Tensors, numbers, strings,
    bools and None; e.g. a model's and an optimizer's ``state_dict()``) to ``path``."""
    arrays: dict[str, np.ndarray] = {}
    try:
        root = _encode(obj, arrays, "obj", set())
    except RecursionError:
        raise CheckpointError("save: the object is nested too deeply to be saved") from None
    header = json.dumps({"format": FORMAT, "version": VERSION, "root": root})
    path = Path(path)
    with atomic_write(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_STRUCTURE, header)
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())
    return path


def load(path):
    """Read a checkpoint written by ``save``; arrays come back as NumPy arrays.

    Memory is bounded by what the file holds: only uncompressed entries (what ``save``
    writes) are accepted, each array's size is checked against its ``.npy`` header and the
    archive's real size before anything is allocated, each array is read once however often
    the structure refers to it, and only plain numeric dtypes (bool, integers, floats,
    complex) are accepted. Raises ``CheckpointError`` for a missing, truncated, foreign or
    hostile file, including one that would not fit in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"load: no checkpoint file at {path}")
    try:
        with open(path, "rb") as file:
            file_size = os.fstat(file.fileno()).st_size
            with zipfile.ZipFile(file) as archive:
                return _read_checkpoint(archive, path, file_size)
    except CheckpointError:
        raise
    except MemoryError:
        raise CheckpointError(f"load: {path} does not fit in memory") from None
    except RecursionError:
        raise CheckpointError(f"load: {path} is nested too deeply to be a chainrule "
                              "checkpoint") from None
    except OSError as e:
        raise CheckpointError(f"load: cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - zipfile and json report damage in many ways
        raise CheckpointError(f"load: {path} is truncated or not a chainrule checkpoint "
                              f"({type(e).__name__}: {e})") from None


def _read_checkpoint(archive, path, file_size):
    entries = {}
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"load: {path} has a compressed entry {info.filename!r}; "
                                  "chainrule writes checkpoints uncompressed and reads no "
                                  "other kind")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"load: {path} has an encrypted entry {info.filename!r}")
        if (info.file_size != info.compress_size
                or info.header_offset + info.compress_size > file_size):
            raise CheckpointError(f"load: {path} is truncated or damaged: the entry "
                                  f"{info.filename!r} claims more bytes than the file holds")
        if info.filename in entries:
            raise CheckpointError(f"load: {path} holds the entry {info.filename!r} twice")
        entries[info.filename] = info
    if _STRUCTURE not in entries:
        raise CheckpointError(f"load: {path} is a zip archive but not a chainrule "
                              "checkpoint (it has no structure.json)")
    header = json.loads(archive.read(entries[_STRUCTURE]))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"load: {path} is not a chainrule checkpoint")
    version = header.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"load: {path} was written by a newer chainrule "
                              f"(format version {version!r})")
    if "root" not in header:
        raise CheckpointError(f"load: {path} has no root in its structure.json")
    arrays = {}  # each array is read once, however often the structure refers to it

    def read_array(name):
        if not isinstance(name, str):
            raise CheckpointError(f"load: {path} has a malformed array reference {name!r}")
        if name not in arrays:
            info = entries.get(f"{name}.npy")
            if info is None:
                raise CheckpointError(f"load: {path} is missing the array {name}")
            arrays[name] = _read_npy(archive, info, path)
        return arrays[name]

    return _decode(header["root"], read_array)


def _read_npy(archive, info, path):
    """One ``.npy`` entry, its header checked against the entry's size before allocating."""
    with archive.open(info) as entry:
        version = np.lib.format.read_magic(entry)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise CheckpointError(f"load: {path}: {info.filename} is truncated or damaged "
                                  "(no .npy header)")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(entry, max_header_size=_MAX_NPY_HEADER)
        if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype:
            raise CheckpointError(f"load: {path}: {info.filename} has dtype {dtype}; a "
                                  "checkpoint holds only bool, integer, float and complex "
                                  "arrays")
        count = math.prod(shape)  # Python integers: no overflow
        needed = count * dtype.itemsize
        if entry.tell() + needed != info.file_size:
            raise CheckpointError(
                f"load: {path}: {info.filename} declares shape {shape} of {dtype} "
                f"({needed} bytes) but the entry holds {info.file_size - entry.tell()}")
        array = np.empty(count, dtype=dtype)
        view, filled = memoryview(array.view(np.uint8)), 0
        while filled < needed:  # in pieces, so no second copy of the whole array exists
            piece = entry.read(min(needed - filled, _READ_PIECE))
            if not piece:
                raise CheckpointError(f"load: {path}: {info.filename} is truncated")
            view[filled:filled + len(piece)] = piece
            filled += len(piece)
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _encode(obj, arrays, where, open_containers):
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _PLAIN_KINDS or obj.dtype.fields is not None:
            raise CheckpointError(f"save: {where} is an array of dtype {obj.dtype}; a "
                                  "checkpoint holds only bool, integer, float and complex "
                                  "arrays (an object array would need pickle)")
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"array": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, int) and obj.bit_length() > _MAX_INT_BITS:
        raise CheckpointError(f"save: {where} is an integer of {obj.bit_length()} bits; a "
                              f"checkpoint holds integers of at most {_MAX_INT_BITS} bits")
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict | list | tuple):
        if id(obj) in open_containers:
            raise CheckpointError(f"save: {where} contains itself, which a checkpoint "
                                  "cannot hold")
        open_containers.add(id(obj))
        try:
            return _encode_container(obj, arrays, where, open_containers)
        finally:
            open_containers.discard(id(obj))
    raise CheckpointError(f"save: {where} is a {type(obj).__name__}; a checkpoint holds only "
                          "dicts, lists, tuples, arrays, numbers, strings, bools and None")


def _encode_container(obj, arrays, where, open_containers):
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, np.integer):
                key = int(key)
            if not isinstance(key, str | int):
                raise CheckpointError(f"save: {where} has a key {key!r}; keys must be "
                                      "strings or integers")
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]", open_containers)])
        return {"dict": items}
    kind = "list" if isinstance(obj, list) else "tuple"
    return {kind: [_encode(v, arrays, f"{where}[{i}]", open_containers)
                   for i, v in enumerate(obj)]}


def _decode(node, read_array):
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise CheckpointError("load: the checkpoint's structure is malformed")
    (kind, value), = node.items()
    if kind == "array":
        return read_array(value)
    if kind == "dict":
        return {key: _decode(v, read_array) for key, v in value}
    if kind == "list":
        return [_decode(v, read_array) for v in value]
    if kind == "tuple":
        return tuple(_decode(v, read_array) for v in value)
    raise CheckpointError(f"load: unknown entry {kind!r} in the checkpoint's structure")
