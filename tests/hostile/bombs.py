"""Small hostile files, each built to make a naive loader allocate far more than it holds.

Every builder writes its file(s) under ``folder`` and returns the path to give the loader.
``tests/hostile/test_bombs.py`` loads each under a memory cap.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# ----- checkpoints ---------------------------------------------------------------------------
def _structure(root) -> str:
    return json.dumps({"format": "chainrule-checkpoint", "version": 1, "root": root})


def _npy_header(descr: str, shape: tuple) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def checkpoint_compressed(folder: Path, megabytes: int = 64,
                          method=zipfile.ZIP_BZIP2) -> Path:
    """One compressed array of zeros: a few KB on disk, ``megabytes`` once decompressed."""
    path = folder / "compressed.crk"
    count = (megabytes << 20) // 8
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("structure.json", _structure({"array": "a0"}))
        with archive.open("a0.npy", "w", force_zip64=True) as entry:
            entry.write(_npy_header("<f8", (count,)))
            zeros = bytes(1 << 20)
            for _ in range(megabytes):
                entry.write(zeros)
    return path


def checkpoint_repeated(folder: Path, megabytes: int = 16, references: int = 15) -> Path:
    """One array referred to ``references`` times by the structure."""
    path = folder / "repeated.crk"
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros((megabytes << 20) // 8))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("structure.json",
                         _structure({"list": [{"array": "a0"}] * references}))
        archive.writestr("a0.npy", buffer.getvalue())
    return path


def checkpoint_header_only(folder: Path, descr: str = "<f8", count: int = 10**12) -> Path:
    """An ``.npy`` header declaring ``count`` elements, and no data."""
    path = folder / f"header-{descr.strip('<|')}.crk"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("structure.json", _structure({"array": "a0"}))
        archive.writestr("a0.npy", _npy_header(descr, (count,)))
    return path


# ----- IDX -------------------------------------------------------------------------------------
def idx_header(type_code: int, shape: tuple) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)


def idx_gzip_overflowing(folder: Path, megabytes: int = 64) -> Path:
    """A header promising 10 images of 28x28, followed by ``megabytes`` of zeros."""
    path = folder / "overflowing-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(idx_header(0x08, (10, 28, 28)) + bytes(10 * 784))
        zeros = bytes(1 << 20)
        for _ in range(megabytes):
            f.write(zeros)
    return path


def idx_gzip_promising(folder: Path) -> Path:
    """A tiny gzip whose header promises 2^31 - 1 images of 28x28 (1.6 TB)."""
    path = folder / "promising-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (2**31 - 1, 28, 28)) + bytes(4096)))
    return path


def idx_overflowing_dimensions(folder: Path) -> Path:
    """Four dimensions of 2^16: their product 2^64 wraps to 0 in int64 arithmetic."""
    path = folder / "wrap-idx4-ubyte"
    path.write_bytes(idx_header(0x08, (2**16,) * 4))
    return path


def mnist_folder(folder: Path, images: int = 10, label_type: int = 0x08) -> Path:
    """The four MNIST files with ``images`` images each (0 for none), labels of type
    ``label_type`` (0x0D: float32)."""
    folder.mkdir(parents=True, exist_ok=True)
    label_dtype = {0x08: np.uint8, 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}[label_type]
    for prefix in ("train", "t10k"):
        pixels = np.zeros((images, 28, 28), np.uint8)
        labels = (np.arange(images) % 10).astype(label_dtype) + (0.5 if label_type != 8 else 0)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            idx_header(0x08, pixels.shape) + pixels.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            idx_header(label_type, labels.shape) + labels.astype(label_dtype).tobytes())
    return folder


# ----- CIFAR-10 --------------------------------------------------------------------------------
class _ZeroStrideView:
    """Pickles as numpy.ndarray(shape, uint8, one byte, 0, strides 0): 30 MB of views
    onto a single byte."""

    def __reduce__(self):
        return (np.ndarray, ((10000, 3072), np.dtype(np.uint8), b"\x00", 0, (0, 0)))


class _ArrayWithoutState:
    """Pickles as _reconstruct(ndarray, (10000, 3072), "B") with no state to fill it."""

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(1, np.uint8))[0],
                (np.ndarray, (10000, 3072), b"B"))


class _ShortArray:
    """Pickles as an array declaring shape (10000, 3072) whose state holds 10 bytes."""

    def __reduce__(self):
        reconstruct = np.ndarray.__reduce__(np.zeros(1, np.uint8))[0]
        return (reconstruct, (np.ndarray, (0,), b"b"),
                (1, (10000, 3072), np.dtype(np.uint8), False, bytes(10)))


def cifar_folder(folder: Path, data, labels) -> Path:
    """A cifar-10-batches-py folder whose six batches all hold ``data`` and ``labels``."""
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps({b"data": data, b"labels": labels}, protocol=2)
    for name in CIFAR_BATCHES:
        (batches / name).write_bytes(blob)
    return batches


def cifar_zero_stride(folder: Path) -> Path:
    return cifar_folder(folder, _ZeroStrideView(), [0] * 10000)


def cifar_without_state(folder: Path) -> Path:
    return cifar_folder(folder, _ArrayWithoutState(), [0] * 10000)


def cifar_short_data(folder: Path) -> Path:
    return cifar_folder(folder, _ShortArray(), [0] * 10000)


def cifar_labels(folder: Path, labels) -> Path:
    return cifar_folder(folder, np.zeros((len(labels), 3072), np.uint8), labels)
