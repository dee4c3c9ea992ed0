"""CIFAR-10, read from the standard ``cifar-10-batches-py`` folder on this machine.

The folder holds six Python pickles (``data_batch_1`` ... ``data_batch_5`` and
``test_batch``) of 10 000 images each. A pickle can name any Python function to call while
it loads, so a tampered file could run code; these files are therefore read with an
unpickler that only lets through the few NumPy names an array needs and refuses the rest.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from chainrule.errors import DataError, DatasetNotFoundError

from .datasets import Dataset, describe_places, search_dirs
from .loader import Seed, train_val_split

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
PIXELS = 3 * 32 * 32

# Everything that may be looked up while loading a batch. The first six rebuild NumPy
# arrays, dtypes and scalars (NumPy 2 renamed numpy.core to numpy._core, so both spellings
# occur). _frombuffer is what NumPy writes for pickle protocol 5, and _codecs.encode is how
# Python 3 writes bytes under protocol 2; both only turn bytes into bytes or arrays.
_ALLOWED = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and nothing else that calls code."""

    def __init__(self, file, filename: Path) -> None:
        # encoding="bytes": the real batches were pickled by Python 2, whose str is bytes.
        super().__init__(file, encoding="bytes")
        self.filename = filename

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise DataError(
            f"refusing to load {module}.{name} from {self.filename}: CIFAR-10 batches contain "
            "only dicts, lists, bytes, strings and NumPy arrays"
        )


def _field(batch: dict, key: str):
    # Python 2 wrote bytes keys; a batch re-pickled by Python 3 may have str keys.
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file safely.

    Returns ``(data, labels)``: data uint8 of shape (n, 3072), each row one 32x32 image as
    three planes (all red values, then green, then blue, each row by row); labels int64 of
    shape (n,) in 0..9. A file that is truncated, refers to anything but NumPy arrays, or
    does not hold a dict with ``data`` and ``labels`` of those shapes raises ``DataError``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        batch = _BatchUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except Exception as exc:  # any failure to unpickle means a corrupt file
        raise DataError(
            f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
            "the file may be truncated"
        ) from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if data is None or labels is None:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in batch)
        raise DataError(f"{path}: expected keys 'data' and 'labels', found {keys}")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path}: expected 'data' to be a uint8 array of shape (n, {PIXELS})")
    if data.shape[1] != PIXELS:
        raise DataError(f"{path}: expected 'data' of shape (n, {PIXELS}), found {data.shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' must be a list of integers") from None
    if labels.shape != (len(data),):
        raise DataError(
            f"{path}: 'data' holds {len(data)} images but 'labels' has shape {labels.shape}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
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
