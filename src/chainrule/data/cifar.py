"""CIFAR-10, read from the standard ``cifar-10-batches-py`` folder on this machine.

The folder holds six Python pickles (``data_batch_1`` ... ``data_batch_5`` and
``test_batch``) of 10 000 images each. A pickle can name any Python function to call while
it loads, so a tampered file could run code; these files are therefore read with an
unpickler that only lets through the few NumPy names an array needs, each replaced by a
stand-in that builds the array from the bytes in the file, and refuses the rest.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
from pathlib import Path

import numpy as np

from chainrule.errors import DataError, DatasetNotFoundError

from .datasets import Dataset, describe_places, search_dirs
from .loader import Seed, train_val_split

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
PIXELS = 3 * 32 * 32

_PLAIN_DTYPES = frozenset({"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8",
                           "uint8", "int64", "int32", "float32", "float64"})
_MAX_DIMS = 32


class _DTypeStub:
    """What ``numpy.dtype(name, align, copy)`` in a batch becomes: a plain numeric dtype
    whose byte order the pickled state may set, and nothing else."""

    def __init__(self, name, align=False, copy=False):
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        if not isinstance(name, str) or name not in _PLAIN_DTYPES:
            raise DataError(f"an array of dtype {name!r:.40}; CIFAR-10 batches hold only "
                            "plain numeric arrays")
        self.dtype = np.dtype(name)

    def __setstate__(self, state):
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if isinstance(order, bytes):
            order = order.decode("ascii", "replace")
        if order not in ("<", ">", "|", "="):
            raise DataError("a dtype with a malformed state")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


def _array_from_bytes(raw, dtype, shape, fortran=False) -> np.ndarray:
    """An array of ``shape`` made from ``raw``, the bytes the file holds for it; its size
    is checked against the shape before anything is copied."""
    if not isinstance(dtype, _DTypeStub):
        raise DataError("an array without a plain numeric dtype")
    if not isinstance(raw, bytes | bytearray):
        raise DataError("an array whose data is not bytes stored in the file")
    if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMS
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise DataError(f"an array with a malformed shape {shape!r:.60}")
    needed = math.prod(shape) * dtype.dtype.itemsize
    if len(raw) != needed:
        raise DataError(f"an array of shape {shape} needs {needed} bytes but the file holds "
                        f"{len(raw)} for it")
    flat = np.frombuffer(raw, dtype=dtype.dtype)
    return flat.reshape(shape, order="F" if fortran is True else "C").copy()


class _ArrayStub:
    """What ``_reconstruct(ndarray, ...)`` becomes: an empty placeholder that only the
    pickled state (shape, dtype and the data bytes) can fill. An array left without
    state is reported, never handed out as uninitialised memory."""

    array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise DataError("an array with a malformed state")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array_from_bytes(raw, dtype, shape, fortran)


def _ndarray(*args, **kwargs):
    """Stands for numpy.ndarray, which a batch may name (for _reconstruct) but not call:
    called, it makes views with any strides over any buffer (zero strides: gigabytes
    out of one byte)."""
    raise DataError("an array made by calling numpy.ndarray directly rather than from "
                    "its bytes")


def _reconstruct(subtype, shape, typecode):
    if subtype is not _ndarray:
        raise DataError("an array of a class other than numpy.ndarray")
    return _ArrayStub()


def _frombuffer(buffer, dtype, shape, order="C"):
    return _array_from_bytes(buffer, dtype, shape, order == "F")


def _scalar(dtype, raw=b""):
    return _array_from_bytes(raw, dtype, ())[()]


def _encode_latin1(text, encoding="utf-8"):
    # how Python 3 writes bytes under pickle protocol 2
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise DataError("a malformed bytes object")
    return text.encode("latin1")


# Everything that may be looked up while loading a batch, each mapped to a stand-in that
# builds arrays only from bytes in the file (NumPy 2 renamed numpy.core to numpy._core,
# so both spellings occur). Nothing of NumPy itself is ever called by the pickle.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _ndarray,
    ("numpy", "dtype"): _DTypeStub,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _encode_latin1,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays from their bytes and nothing else."""

    def __init__(self, file, filename: Path) -> None:
        # encoding="bytes": the real batches were pickled by Python 2, whose str is bytes.
        super().__init__(file, encoding="bytes")
        self.filename = filename

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise DataError(
            f"refusing to load {module}.{name} from {self.filename}: CIFAR-10 batches contain "
            "only dicts, lists, bytes, strings and NumPy arrays"
        )


def _check_opcodes(raw: bytes) -> None:
    """Walk the pickle's opcodes without running them: every length it declares must fit
    in the file and every memo slot must be one already numbered, because the unpickler
    allocates what they declare before reading (a 4 GB string, a 2^32-slot memo)."""
    opcodes = 0
    try:
        for opcode, arg, _ in pickletools.genops(raw):  # checks each length against the data
            opcodes += 1
            if opcode.name in ("BINPUT", "LONG_BINPUT", "PUT") and int(arg) > opcodes:
                raise ValueError(f"a memo slot {arg} out of order")
            if opcode.name == "FRAME" and arg > len(raw):
                raise ValueError(f"a frame of {arg} bytes in a file of {len(raw)}")
    except ValueError as exc:
        raise DataError(f"the file is truncated or damaged ({exc!s:.100})") from None


def _field(batch: dict, key: str):
    # Python 2 wrote bytes keys; a batch re-pickled by Python 3 may have str keys.
    value = batch[key.encode()] if key.encode() in batch else batch.get(key)
    if isinstance(value, _ArrayStub):
        if value.array is None:
            raise DataError(f"'{key}' is an array without data")
        return value.array
    return value


def _labels(labels, path: Path) -> np.ndarray:
    """The labels as int64 (n,), refusing anything that is not an integer in 0..9."""
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise DataError(f"{path}: 'labels' must be integers of shape (n,), found "
                            f"{labels.dtype.name} of shape {labels.shape}")
        values = labels
    elif isinstance(labels, list):
        for value in labels:
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise DataError(f"{path}: 'labels' must be integer class labels, found "
                                f"{type(value).__name__} {value!r:.30}")
        values = labels
    else:
        raise DataError(f"{path}: 'labels' must be a list of integers, found "
                        f"{type(labels).__name__}")
    if len(values) and (min(values) < 0 or max(values) > 9):
        raise DataError(f"{path}: labels must lie in 0..9, found {min(values)}..{max(values)}")
    return np.array(values, dtype=np.int64)


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file safely.

    Returns ``(data, labels)``: data uint8 of shape (n, 3072), each row one 32x32 image as
    three planes (all red values, then green, then blue, each row by row); labels int64 of
    shape (n,) in 0..9. Arrays are built only from the bytes the file holds for them,
    their size checked before any copy. A file that is truncated, refers to anything but
    NumPy arrays, or does not hold a dict with ``data`` and ``labels`` of those shapes
    raises ``DataError``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        _check_opcodes(raw)
        batch = _BatchUnpickler(io.BytesIO(raw), path).load()
        if not isinstance(batch, dict):
            raise DataError(f"expected a pickled dict, found {type(batch).__name__}")
        data, labels = _field(batch, "data"), _field(batch, "labels")
    except DataError as exc:
        message = str(exc)
        raise DataError(message if str(path) in message else f"{path}: {message}") from None
    except MemoryError:
        raise DataError(f"{path}: not a readable CIFAR-10 batch: it declares more data than "
                        "memory holds (the file is damaged or hostile)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means a corrupt file
        raise DataError(
            f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: {exc!s:.200}); "
            "the file may be truncated"
        ) from None
    if data is None or labels is None:
        keys = sorted(k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)[:40]
                      for k in batch if isinstance(k, bytes | str))
        raise DataError(f"{path}: expected keys 'data' and 'labels', found {keys}")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path}: expected 'data' to be a uint8 array of shape (n, {PIXELS})")
    if data.shape[1] != PIXELS or data.shape[0] == 0:
        raise DataError(f"{path}: expected 'data' of shape (n, {PIXELS}) with n > 0, found "
                        f"{data.shape}")
    labels = _labels(labels, path)
    if labels.shape != (len(data),):
        raise DataError(
            f"{path}: 'data' holds {len(data)} images but 'labels' has shape {labels.shape}"
        )
    return data, labels


def _has_batches(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def _locate(path) -> Path:
    places = []
    for root in search_dirs("cifar10", path):
        # Accept the cifar-10-batches-py folder itself or the folder that holds it; a data
        # root given as ``path`` may also hold them inside a "cifar10" folder.
        nested = (root / "cifar10", root / "cifar10" / FOLDER)
        for folder in (root, root / FOLDER, *(f for f in nested if f.is_dir())):
            places.append(folder)
            if _has_batches(folder):
                return folder
    raise DatasetNotFoundError(
        f"CIFAR-10 not found: looked for {FOLDER} ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH}) "
        f"in {describe_places('cifar10', path, places)}. To get it, download the Python "
        "version (cifar-10-python.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html "
        f"and unpack it into $CHAINRULE_DATA/cifar10 or give its folder "
        "(path=..., --data-dir on the command line)"
    )


def _to_features(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float32) / np.float32(255.0)


def cifar10(
    path: str | os.PathLike | None = None, val_fraction: float = 0.1, seed: Seed = 0
) -> Dataset:
    """CIFAR-10 from a local ``cifar-10-batches-py`` folder: 32x32 colour images, 10 classes.

    ``path`` may name that folder or the folder holding it; default
    ``$CHAINRULE_DATA/cifar10``. Returns a ``Dataset`` with features float32 in [0, 1] of
    shape (N, 3072) in the files' channel-major order, so ``image_shape=(3, 32, 32)``:
    ``X.reshape(-1, 3, 32, 32)`` gives (image, channel, row, column), and
    ``.transpose(0, 2, 3, 1)`` gives images to plot. The validation set is a stratified
    ``val_fraction`` of the 50 000 training images (fixed by ``seed``); the test set is
    ``test_batch``.
    """
    folder = _locate(path)
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    test_data, test_labels = read_batch(folder / TEST_BATCH)
    X_train, y_train, X_val, y_val = train_val_split(data, labels, val_fraction, seed=seed)
    return Dataset(
        "cifar10",
        _to_features(X_train),
        y_train,
        _to_features(X_val),
        y_val,
        _to_features(test_data),
        test_labels,
        num_classes=10,
        image_shape=(3, 32, 32),
    )
