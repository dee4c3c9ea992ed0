"""MNIST and Fashion-MNIST, read from IDX files already on this machine.

Nothing is downloaded. The four standard files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
optionally gzipped) are looked for in the ``path`` argument, else in
``$CHAINRULE_DATA/mnist`` or ``$CHAINRULE_DATA/fashion-mnist``, and for Fashion-MNIST also
where Debian's ``dataset-fashion-mnist`` package puts them.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from chainrule.errors import DataError, DatasetNotFoundError

from .datasets import Dataset, describe_places, search_dirs
from .loader import Seed, train_val_split

# IDX type code -> element type; multi-byte types are big-endian in the file.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


# A gzipped IDX file may expand to at most this many times its size (or to the floor,
# whichever is more). Real MNIST files expand 2-5 times; a "gzip bomb" (1 MB of zeros
# that expands to 1 GB) is refused before it costs memory.
MAX_GZIP_RATIO, GZIP_FLOOR = 100, 1 << 24
_READ_PIECE = 1 << 22


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain, or gzipped if its name ends in ``.gz``) into an array.

    The file starts with a magic number: two zero bytes, a type code (0x08 uint8, 0x09
    int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of dimensions;
    then one big-endian int32 per dimension, then the elements in C order. Returns an array
    of that shape in native byte order. The header is read first and checked against the
    file's size (for a gzipped file: at most ``MAX_GZIP_RATIO`` times its size) before any
    memory is set aside, and the data is read in pieces, so a file cannot make this
    allocate more than it holds. A file whose size does not match its header exactly
    raises ``DataError`` naming the file, the expected and the found sizes.
    """
    path = Path(path)
    try:
        with open(path, "rb") as plain:
            stored = os.fstat(plain.fileno()).st_size
            if path.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=plain, mode="rb") as f:
                    limit = max(MAX_GZIP_RATIO * stored, GZIP_FLOOR)
                    return _read_idx_stream(f, path, None, limit)
            return _read_idx_stream(plain, path, stored, stored)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    except MemoryError:
        raise DataError(f"{path}: the data does not fit in memory") from None


def _read_idx_stream(f, path: Path, size: int | None, limit: int) -> np.ndarray:
    """Header, checks, then the elements; ``size`` is the file's length if known."""
    magic = f.read(4)
    if len(magic) < 4:
        raise DataError(f"{path}: expected an IDX header of at least 4 bytes, "
                        f"found {len(magic)}")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
        raise DataError(
            f"{path}: not an IDX file: expected a magic number 00 00 <type 08/09/0B/0C/0D/0E> "
            f"<ndim>, found {magic.hex(' ')}"
        )
    dtype, ndim = _IDX_TYPES[magic[2]], magic[3]
    dims = f.read(4 * ndim)
    header_size = 4 + 4 * ndim
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated header: {ndim} dimensions need {header_size} "
                        f"bytes, found {4 + len(dims)}")
    shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow to 0
    if size is not None and size - header_size != expected:
        found = size - header_size
        problem = "truncated" if found < expected else "has extra bytes at the end"
        raise DataError(f"{path}: file {problem}: shape {shape} of {dtype.name} needs "
                        f"{expected} data bytes, found {found}")
    if expected > limit:
        raise DataError(f"{path}: the header promises shape {shape} of {dtype.name} "
                        f"({expected} bytes), more than a file of this size can honestly "
                        f"hold (at most {limit}); the file is damaged or hostile")
    # Memory grows with the data actually read, never with what the header claims.
    data = bytearray()
    while len(data) < expected:
        piece = f.read(min(expected - len(data), _READ_PIECE))
        if not piece:
            raise DataError(f"{path}: file truncated: shape {shape} of {dtype.name} needs "
                            f"{expected} data bytes, found {len(data)}")
        data += piece
    if f.read(1):
        raise DataError(f"{path}: file has extra bytes at the end: shape {shape} of "
                        f"{dtype.name} needs {expected} data bytes")
    # astype copies into native byte order; a native-order array is returned as it is.
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_SOURCES = {
    "mnist": {
        "title": "MNIST",
        "home": "http://yann.lecun.com/exdb/mnist/",
        "system_dirs": (),
        "system_hint": "",
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "home": "https://github.com/zalandoresearch/fashion-mnist",
        "system_dirs": ("/usr/share/datasets/fashion-mnist",),
        "system_hint": ", or `apt-get install dataset-fashion-mnist` on Debian/Ubuntu",
    },
}


def _find_file(folder: Path, stem: str) -> Path | None:
    # Some mirrors name the files "train-images.idx3-ubyte" (a dot before "idx").
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _locate(name: str, path) -> dict[str, Path]:
    """Find the folder that holds all four IDX files of data set ``name``."""
    source = _SOURCES[name]
    roots = search_dirs(name, path, source["system_dirs"])
    places = []
    for root in roots:
        # The files may sit in the root itself or, as in torchvision's layout, one level down.
        for folder in (root, root / name, root / "raw"):
            if folder != root and not folder.is_dir():
                continue
            places.append(folder)
            found = {key: _find_file(folder, stem) for key, stem in _FILES.items()}
            if all(found.values()):
                return found
    raise DatasetNotFoundError(
        f"{source['title']} not found: looked for the four IDX files "
        f"({', '.join(_FILES.values())}, optionally .gz) in "
        f"{describe_places(name, path, places or roots)}. To get it, download them from "
        f"{source['home']} into $CHAINRULE_DATA/{name} or give its folder "
        f"(path=..., --data-dir on the command line){source['system_hint']}"
    )


def _load_pair(images_file: Path, labels_file: Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Images as float32 rows in [0, 1], labels as int64, and the shape of one image."""
    images = read_idx(images_file)
    labels = read_idx(labels_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_file}: expected uint8 images of shape (N, rows, cols), "
            f"found {images.dtype.name} of shape {images.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_file}: labels must be integers (IDX type 08, 09, 0B or "
                        f"0C), found {labels.dtype.name}; is this really a labels file?")
    if labels.ndim != 1:
        raise DataError(f"{labels_file}: expected labels of shape (N,), found {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_file.name} holds {len(images)} images but {labels_file.name} holds "
            f"{len(labels)} labels"
        )
    if len(images) == 0:
        raise DataError(f"{images_file}: the file holds no images (its first dimension "
                        "is 0)")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(
            f"{labels_file}: labels must lie in 0..9, found {labels.min()}..{labels.max()}"
        )
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.int64), images.shape[1:]


def _load_idx_dataset(name: str, path, val_fraction: float, seed: Seed) -> Dataset:
    files = _locate(name, path)
    X_all, y_all, image_shape = _load_pair(files["train_images"], files["train_labels"])
    X_test, y_test, test_shape = _load_pair(files["test_images"], files["test_labels"])
    if test_shape != image_shape:
        raise DataError(
            f"training images are {image_shape[0]}x{image_shape[1]} but test images are "
            f"{test_shape[0]}x{test_shape[1]}"
        )
    X_train, y_train, X_val, y_val = train_val_split(X_all, y_all, val_fraction, seed=seed)
    return Dataset(name, X_train, y_train, X_val, y_val, X_test, y_test, 10, image_shape)


def mnist(
    path: str | os.PathLike | None = None, val_fraction: float = 0.1, seed: Seed = 0
) -> Dataset:
    """MNIST handwritten digits from local IDX files: 28x28 grey images, 10 classes.

    Returns a ``Dataset`` with pixels scaled to [0, 1] float32 and flattened to (N, 784),
    ``image_shape=(28, 28)``. The validation set is a stratified ``val_fraction`` of the
    official 60 000 training images (fixed by ``seed``); the test set is the official
    10 000 t10k images. Looks in ``path``, else ``$CHAINRULE_DATA/mnist``.
    """
    return _load_idx_dataset("mnist", path, val_fraction, seed)


def fashion_mnist(
    path: str | os.PathLike | None = None, val_fraction: float = 0.1, seed: Seed = 0
) -> Dataset:
    """Fashion-MNIST (Zalando clothing images) from local IDX files; same layout as MNIST.

    Looks in ``path``, else ``$CHAINRULE_DATA/fashion-mnist``, else
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package).
    """
    return _load_idx_dataset("fashion-mnist", path, val_fraction, seed)
