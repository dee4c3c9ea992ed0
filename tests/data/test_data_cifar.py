"""CIFAR-10 batches: layout, safe unpickling and corrupt files, on tiny batches made here."""

import os
import pickle
import struct

import numpy as np
import pytest

from chainrule.data import cifar10, load_dataset, read_batch
from chainrule.errors import DataError, DatasetNotFoundError

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def make_batch(n, first_id, rng):
    """n random images; the first red pixel of each stores its label, the last blue its id."""
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[:, 0] = np.array(labels) * 20
    data[:, -1] = np.arange(first_id, first_id + n)
    return {
        b"batch_label": b"testing batch",
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(first_id, first_id + n)],
    }


def make_cifar_dir(parent, n=20, seed=0):
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k, name in enumerate(BATCHES):
        with open(folder / name, "wb") as f:
            pickle.dump(make_batch(n, k * n, rng), f)
    return folder


def test_load_via_folder_and_parent(tmp_path):
    folder = make_cifar_dir(tmp_path)
    ds = cifar10(folder, val_fraction=0.1, seed=0)
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (90, 10, 20)
    assert ds.X_train.shape[1] == 3072 and ds.image_shape == (3, 32, 32) and ds.num_classes == 10
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    for X, y in ((ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)):
        np.testing.assert_allclose(X[:, 0] * 255 / 20, y, atol=1e-4)
    ids = np.rint(np.concatenate([ds.X_train, ds.X_val])[:, -1] * 255).astype(int)
    assert sorted(ids.tolist()) == list(range(100))  # all five training batches, once each
    np.testing.assert_array_equal(np.rint(ds.X_test[:, -1] * 255), np.arange(100, 120))
    from_parent = cifar10(tmp_path, val_fraction=0.1, seed=0)
    np.testing.assert_array_equal(from_parent.X_val, ds.X_val)


def test_channel_major_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    image = np.zeros((3, 32, 32), dtype=np.uint8)
    image[0, 1, 2] = 255  # red, row 1, column 2
    image[2, 31, 0] = 51  # blue, row 31, column 0
    batch = {b"data": np.tile(image.reshape(1, -1), (10, 1)), b"labels": list(range(10))}
    for name in BATCHES:
        (folder / name).write_bytes(pickle.dumps(batch, protocol=5))
    images = cifar10(folder).X_test.reshape(-1, 3, 32, 32)
    assert images[0, 0, 1, 2] == 1.0 and np.isclose(images[0, 2, 31, 0], 0.2)
    assert images.sum(axis=(1, 2, 3))[0] == pytest.approx(1.2)


def test_environment_variable_and_load_dataset(tmp_path, monkeypatch):
    make_cifar_dir(tmp_path / "cifar10")
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    assert len(cifar10().X_test) == 20
    assert len(load_dataset("cifar10", seed=3).X_val) == 10
    monkeypatch.delenv("CHAINRULE_DATA")
    assert len(load_dataset("cifar10", data_dir=tmp_path).X_test) == 20


def test_missing_lists_places(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        cifar10()
    message = str(info.value)
    assert str(tmp_path / "cifar10") in message
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in message
    assert "cifar-10-python.tar.gz" in message and "\n" not in message


class Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    folder = make_cifar_dir(tmp_path)
    marker = tmp_path / "pwned"
    batch = make_batch(20, 0, np.random.default_rng(0))
    batch[b"batch_label"] = Exploit(marker)
    (folder / "data_batch_3").write_bytes(pickle.dumps(batch))
    with pytest.raises(
        DataError, match=r"refusing to load (posix|os|nt)\.system from .*data_batch_3"
    ):
        cifar10(folder)
    assert not marker.exists()
    # any other global is refused too, even a harmless one
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(DataError, match="builtins.print"):
        read_batch(folder / "data_batch_3")


def test_truncated_and_malformed_batches(tmp_path):
    folder = make_cifar_dir(tmp_path)
    whole = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="test_batch.*truncated"):
        cifar10(folder)
    (folder / "test_batch").write_bytes(b"")
    with pytest.raises(DataError, match="test_batch"):
        cifar10(folder)


MALFORMED = {
    "list": [1, 2, 3],
    "no labels": {b"data": np.zeros((2, 3072), np.uint8)},
    "wide": {b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]},
    "float": {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
    "short labels": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
    "label 10": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
    "text labels": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [b"cat", b"dog"]},
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_batch_structure(tmp_path, case):
    (tmp_path / "batch").write_bytes(pickle.dumps(MALFORMED[case]))
    with pytest.raises(DataError, match="batch"):
        read_batch(tmp_path / "batch")


def test_str_keys_are_accepted(tmp_path):
    batch = {"data": np.zeros((2, 3072), np.uint8), "labels": [3, 4]}
    (tmp_path / "batch").write_bytes(pickle.dumps(batch, protocol=2))
    data, labels = read_batch(tmp_path / "batch")
    assert data.shape == (2, 3072) and labels.tolist() == [3, 4]


def python2_pickle(batch):
    """Hand-assemble the protocol-2 pickle Python 2 wrote for the real CIFAR-10 batches.

    Python 2's str is bytes and its arrays reference numpy.core.multiarray, which Python 3
    cannot write by itself, so the opcodes are written out here.
    """

    def string(b):  # SHORT_BINSTRING or BINSTRING: a Python 2 str
        if len(b) < 256:
            return b"U" + bytes([len(b)]) + b
        return b"T" + struct.pack("<i", len(b)) + b

    def integer(v):  # BININT1 or BININT
        return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)

    def array(a):
        # dtype('u1') rebuilt as dtype("u1", 0, 1) then given its state tuple
        dtype = b"".join([
            b"cnumpy\ndtype\n", string(b"u1"), integer(0), integer(1), b"\x87R",
            b"(", integer(3), string(b"|"), b"NNN", integer(-1), integer(-1), integer(0), b"tb",
        ])  # fmt: skip
        shape = b"(" + b"".join(integer(d) for d in a.shape) + b"t"
        # _reconstruct(ndarray, (0,), "b"), then state (1, shape, dtype, False, raw bytes)
        return b"".join([
            b"cnumpy.core.multiarray\n_reconstruct\n", b"cnumpy\nndarray\n",
            integer(0), b"\x85", string(b"b"), b"\x87R",
            b"(", integer(1), shape, dtype, b"\x89", string(a.tobytes()), b"tb",
        ])  # fmt: skip

    labels = b"](" + b"".join(integer(v) for v in batch[b"labels"]) + b"e"
    return b"".join([
        b"\x80\x02}(",
        string(b"data"), array(batch[b"data"]),
        string(b"labels"), labels,
        string(b"batch_label"), string(batch[b"batch_label"]),
        b"u.",
    ])  # fmt: skip


def test_reads_python2_batches(tmp_path):
    batch = make_batch(12, 0, np.random.default_rng(4))
    (tmp_path / "py2").write_bytes(python2_pickle(batch))
    data, labels = read_batch(tmp_path / "py2")
    np.testing.assert_array_equal(data, batch[b"data"])
    np.testing.assert_array_equal(labels, batch[b"labels"])
    assert labels.dtype == np.int64
