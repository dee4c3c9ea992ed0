"""The IDX reader and the MNIST / Fashion-MNIST loaders, on tiny files made here."""

import gzip
import struct

import numpy as np
import pytest

from chainrule.data import fashion_mnist, load_dataset, mnist, read_idx
from chainrule.data import idx as idx_module
from chainrule.errors import DataError, DatasetNotFoundError

TYPE_CODES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}


def idx_bytes(array):
    """Encode an array in the IDX format, independently of the library's reader."""
    array = np.asarray(array)
    header = bytes([0, 0, TYPE_CODES[array.dtype.name], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=None):
    data = idx_bytes(array)
    if gz if gz is not None else str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_type(tmp_path, dtype, suffix):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "uint8":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    back = read_idx(write_idx(tmp_path / f"a{suffix}", array))
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # the result is an ordinary writable array


def test_truncated_oversized_and_foreign_files(tmp_path):
    good = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    (tmp_path / "short").write_bytes(good[:-10])
    with pytest.raises(DataError, match=r"short.*truncated.*2352.*2342"):
        read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(good + b"\0")
    with pytest.raises(DataError, match="extra bytes"):
        read_idx(tmp_path / "long")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataError, match=r"png.*magic number"):
        read_idx(tmp_path / "png")
    (tmp_path / "head").write_bytes(good[:9])
    with pytest.raises(DataError, match="header"):
        read_idx(tmp_path / "head")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:-30])
    with pytest.raises(DataError, match="bad.gz"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "plain.gz").write_bytes(good)
    with pytest.raises(DataError, match="gzip"):
        read_idx(tmp_path / "plain.gz")


def make_mnist_dir(folder, n_train=50, n_test=20, gz=True, seed=0):
    """Four tiny IDX files; pixel (0, 0) of each image stores its label, for checking."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels * 20
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_path(tmp_path, gz):
    ds = mnist(make_mnist_dir(tmp_path / "m", gz=gz), val_fraction=0.2, seed=0)
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (40, 10, 20)
    assert ds.X_train.shape[1] == 784 and ds.image_shape == (28, 28) and ds.num_classes == 10
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    for X, y in ((ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)):
        np.testing.assert_allclose(X[:, 0] * 255 / 20, y, atol=1e-4)  # labels stayed paired
    assert np.bincount(ds.y_val).tolist() == [1] * 10  # stratified
    np.testing.assert_array_equal(ds.y_test, np.arange(20) % 10)  # official test set, in order
    np.testing.assert_array_equal(mnist(tmp_path / "m", val_fraction=0.2).X_val, ds.X_val)


def test_mnist_via_environment_and_load_dataset(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path / "mnist")
    make_mnist_dir(tmp_path / "fashion-mnist", n_train=30)
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    assert len(mnist().X_test) == 20
    ds = fashion_mnist(seed=1)
    assert ds.name == "fashion-mnist" and len(ds.X_train) + len(ds.X_val) == 30
    assert load_dataset("fashion-mnist", seed=1).X_val.shape == ds.X_val.shape
    monkeypatch.delenv("CHAINRULE_DATA")
    assert len(load_dataset("mnist", data_dir=tmp_path).X_test) == 20  # root of data sets


def test_fashion_mnist_from_system_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    system = make_mnist_dir(tmp_path / "usr" / "share" / "datasets" / "fashion-mnist")
    monkeypatch.setitem(idx_module._SOURCES["fashion-mnist"], "system_dirs", (str(system),))
    assert len(fashion_mnist().X_test) == 20


def test_missing_data_set_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "data"))
    system = tmp_path / "system"
    monkeypatch.setitem(idx_module._SOURCES["fashion-mnist"], "system_dirs", (str(system),))
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist()
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "data" / "fashion-mnist") in message and str(system) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert isinstance(info.value, FileNotFoundError)

    monkeypatch.delenv("CHAINRULE_DATA")
    with pytest.raises(
        DatasetNotFoundError, match=r"CHAINRULE_DATA is not set.*\$CHAINRULE_DATA/mnist"
    ):
        mnist()
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nowhere")):
        mnist(tmp_path / "nowhere")


def test_partial_or_mismatched_files(tmp_path):
    folder = make_mnist_dir(tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError):
        mnist(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match="20 images.*19 labels"):
        mnist(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(20, dtype=np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 28), dtype=np.int32))
    with pytest.raises(DataError, match="uint8"):
        mnist(folder)
