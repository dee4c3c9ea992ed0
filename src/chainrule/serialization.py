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
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .errors import CheckpointError
from .tensor import Tensor

FORMAT, VERSION = "chainrule-checkpoint", 1
_STRUCTURE = "structure.json"


def save(obj, path) -> Path:
    """Write ``obj`` (nested dicts, lists and tuples of arrays, Tensors, numbers, strings,
    bools and None; e.g. a model's and an optimizer's ``state_dict()``) to ``path``."""
    arrays: dict[str, np.ndarray] = {}
    root = _encode(obj, arrays, "obj")
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

    Raises ``CheckpointError`` for a missing, truncated or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"load: no checkpoint file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _STRUCTURE not in names:
                raise CheckpointError(f"load: {path} is a zip archive but not a chainrule "
                                      "checkpoint (it has no structure.json)")
            header = json.loads(archive.read(_STRUCTURE))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CheckpointError(f"load: {path} is not a chainrule checkpoint")
            if header.get("version", 0) > VERSION:
                raise CheckpointError(f"load: {path} was written by a newer chainrule "
                                      f"(format version {header['version']})")

            def read_array(name):
                if f"{name}.npy" not in names:
                    raise CheckpointError(f"load: {path} is missing the array {name}")
                data = archive.read(f"{name}.npy")
                return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)

            return _decode(header["root"], read_array)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, TypeError,
            UnicodeDecodeError, NotImplementedError, RuntimeError, OSError) as e:
        # zipfile reports damage in many ways: bad offsets, unknown methods, odd flags
        raise CheckpointError(f"load: {path} is truncated or not a chainrule checkpoint "
                              f"({type(e).__name__}: {e})") from None


def _encode(obj, arrays, where):
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "O":
            raise CheckpointError(f"save: {where} is an object array, which cannot be saved "
                                  "without pickle")
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"array": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, np.integer):
                key = int(key)
            if not isinstance(key, str | int):
                raise CheckpointError(f"save: {where} has a key {key!r}; keys must be "
                                      "strings or integers")
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]")])
        return {"dict": items}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise CheckpointError(f"save: {where} is a {type(obj).__name__}; a checkpoint holds only "
                          "dicts, lists, tuples, arrays, numbers, strings, bools and None")


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
