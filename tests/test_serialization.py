"""Checkpoints: ``chainrule.save`` and ``chainrule.load``.

A checkpoint is a zip of ``structure.json`` and ``.npy`` files, with no pickle anywhere;
loading a damaged or foreign file raises ``CheckpointError``; saving is atomic.
"""

import io
import json
import math
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import CheckpointError


def round_trip(obj, tmp_path):
    path = tmp_path / "checkpoint.ckpt"
    assert cr.save(obj, path) == path
    return cr.load(path)


def assert_same(loaded, original):
    """Equal values and the same container types (Tensors come back as arrays)."""
    if isinstance(original, cr.Tensor):
        original = original.data
    if isinstance(original, np.ndarray):
        assert type(loaded) is np.ndarray
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        np.testing.assert_array_equal(loaded, original)
    elif isinstance(original, dict):
        assert isinstance(loaded, dict)
        assert list(loaded) == list(original)  # same keys, same order, same key types
        assert [type(k) for k in loaded] == [type(k) for k in original]
        for key in original:
            assert_same(loaded[key], original[key])
    elif isinstance(original, list | tuple):
        assert type(loaded) is type(original) and len(loaded) == len(original)
        for a, b in zip(loaded, original):
            assert_same(a, b)
    elif isinstance(original, float) and math.isnan(original):
        assert isinstance(loaded, float) and math.isnan(loaded)
    else:
        assert type(loaded) is type(original) and loaded == original
        if isinstance(original, float):
            assert math.copysign(1, loaded) == math.copysign(1, original)


# ----- round trips --------------------------------------------------------------------------
def test_round_trip_of_nested_containers_and_scalars(tmp_path):
    obj = OrderedDict([
        ("model", OrderedDict([("0.weight", np.ones((2, 3), np.float32)), ("0.bias", None)])),
        ("epoch", 7),
        ("big", 2**70),
        ("floats", [0.1, 1 / 3, -0.0, 1e-310, 1.7976931348623157e308, math.pi, float("inf"),
                    -float("inf"), float("nan")]),
        ("flags", (True, False, None)),
        ("text", "λ = 1e-3, \"quoted\" \\ and\nnewline"),
        (3, "int key"),
        ("3", "string key beside it"),
        (-1, {0: [], 1: (), 2: {}}),
        ("nested", [[1, [2, (3, {"deep": np.arange(4)})]]]),
    ])
    assert_same(round_trip(obj, tmp_path), obj)


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.float32).reshape(2, 3),
    np.linspace(-1, 1, 7),
    np.array([1, 2], dtype=np.float16),
    np.array([-3, 4], dtype=np.int8),
    np.arange(5, dtype=np.int32),
    np.arange(5, dtype=np.int64),
    np.array([0, 255], dtype=np.uint8),
    np.array([True, False]),
    np.array([1 + 2j, -1j]),
    np.array(2.5),
    np.zeros((0, 3)),
    np.arange(12.0).reshape(3, 4).T,  # not contiguous
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.arange(10.0)[::3],
    np.array([1.5, 2.5], dtype=">f8"),
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_round_trip_of_arrays_keeps_dtype_and_values(tmp_path, array):
    assert_same(round_trip({"x": array}, tmp_path)["x"], array)


@pytest.mark.parametrize("array", [np.array(["cat", "frog"]), np.zeros(2, dtype="V0"),
                                   np.zeros(2, dtype=[("a", "f4")])], ids=str)
def test_arrays_that_are_not_plain_numbers_are_refused(tmp_path, array):
    with pytest.raises(CheckpointError, match="only bool, integer, float and complex"):
        cr.save({"x": array}, tmp_path / "c.crk")


def test_float_bits_are_exact(tmp_path):
    values = np.random.default_rng(0).standard_normal(1000)
    obj = {"array": values, "array32": values.astype(np.float32), "floats": values.tolist()}
    loaded = round_trip(obj, tmp_path)
    assert loaded["array"].tobytes() == values.tobytes()
    assert loaded["array32"].tobytes() == values.astype(np.float32).tobytes()
    assert loaded["floats"] == values.tolist()


def test_tensors_and_numpy_scalars(tmp_path):
    t = cr.tensor(np.arange(3.0, dtype=np.float32), requires_grad=True)
    loaded = round_trip({"t": t, "n": np.int64(4), "f": np.float64(0.1), "b": np.bool_(True)},
                        tmp_path)
    assert type(loaded["t"]) is np.ndarray and loaded["t"].dtype == np.float32
    np.testing.assert_array_equal(loaded["t"], t.data)
    assert loaded["n"] == 4 and type(loaded["n"]) is int
    assert loaded["f"] == 0.1 and type(loaded["f"]) is float
    assert loaded["b"] is True


def test_loaded_arrays_are_writable(tmp_path):
    loaded = round_trip({"w": np.zeros(3)}, tmp_path)
    loaded["w"][0] = 1  # a training run resumes by writing into them


def test_model_round_trip_gives_identical_outputs(tmp_path):
    model = nn.MLP(4, [16, 8], 3, activation="tanh", seed=0)
    x = np.random.default_rng(1).standard_normal((10, 4)).astype(np.float32)
    path = tmp_path / "model.ckpt"
    cr.save({"model": model.state_dict(), "epoch": 3}, str(path))
    fresh = nn.MLP(4, [16, 8], 3, activation="tanh", seed=99)
    assert not np.array_equal(fresh(x).data, model(x).data)
    checkpoint = cr.load(str(path))
    fresh.load_state_dict(checkpoint["model"])
    assert checkpoint["epoch"] == 3
    np.testing.assert_array_equal(fresh(x).data, model(x).data)
    assert all(p.dtype == np.float32 for p in fresh.parameters())


def test_save_overwrites_an_existing_checkpoint(tmp_path):
    path = tmp_path / "c.ckpt"
    cr.save({"v": 1}, path)
    cr.save({"v": 2}, path)
    assert cr.load(path) == {"v": 2}


# ----- no pickle ------------------------------------------------------------------------------
def test_archive_holds_json_and_plain_npy_files(tmp_path):
    path = tmp_path / "c.ckpt"
    cr.save({"a": np.ones(3, np.float32), "b": [np.arange(2), cr.tensor([1.0, 2.0])],
             "c": "text"}, path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "structure.json" in names
        arrays = [n for n in names if n != "structure.json"]
        assert len(arrays) == 3 and all(n.endswith(".npy") for n in arrays)
        json.loads(archive.read("structure.json"))  # plain JSON
        for name in arrays:
            f = io.BytesIO(archive.read(name))
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}
            _, _, dtype = read_header[np.lib.format.read_magic(f)](f)
            assert not dtype.hasobject
            np.lib.format.read_array(io.BytesIO(archive.read(name)), allow_pickle=False)


MARKS = []


class Payload:
    """An object that would run code if it were ever unpickled."""

    def __reduce__(self):
        return (MARKS.append, ("unpickled",))


def test_a_pickled_array_in_a_crafted_file_is_refused_unopened(tmp_path):
    path = tmp_path / "evil.ckpt"
    header = {"format": "chainrule-checkpoint", "version": 1, "root": {"array": "a0"}}
    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("structure.json", json.dumps(header))
        archive.writestr("a0.npy", buffer.getvalue())
    with pytest.raises(CheckpointError):
        cr.load(path)
    assert MARKS == []


# ----- what cannot be saved --------------------------------------------------------------------
@pytest.mark.parametrize("value, kind", [
    (lambda x: x, "function"),
    (np.array([{"a": 1}, None], dtype=object), "object array"),
    ({1, 2}, "set"),
    (Payload(), "Payload"),
    (nn.Linear(2, 2), "Linear"),
])
def test_unsupported_objects_are_refused_with_their_place(tmp_path, value, kind):
    path = tmp_path / "c.ckpt"
    cr.save({"keep": 1}, path)
    with pytest.raises(CheckpointError) as info:
        cr.save({"model": {"layers": [1, value]}}, path)
    message = str(info.value)
    assert "['model']['layers'][1]" in message and kind in message
    assert cr.load(path) == {"keep": 1}  # the old checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]


@pytest.mark.parametrize("key", [(1, 2), 1.5, None])
def test_unsupported_keys_are_refused(tmp_path, key):
    with pytest.raises(CheckpointError, match="keys must be strings or integers"):
        cr.save({"outer": {key: 1}}, tmp_path / "c.ckpt")
    assert not (tmp_path / "c.ckpt").exists()


# ----- damaged and foreign files --------------------------------------------------------------
@pytest.fixture
def checkpoint_bytes(tmp_path):
    """A small checkpoint (two arrays and a number), so that every byte can be tried."""
    path = tmp_path / "good.ckpt"
    cr.save({"w": np.arange(3.0, dtype=np.float32), "b": np.zeros(1), "epoch": 1}, path)
    return path.read_bytes()


def rewrite(path, data):
    # A fresh file each time: truncating a written file makes ext4 flush it (slow).
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def test_truncated_file_at_every_length(tmp_path, checkpoint_bytes):
    path = tmp_path / "cut.ckpt"
    for length in range(len(checkpoint_bytes)):
        rewrite(path, checkpoint_bytes[:length])
        with pytest.raises(CheckpointError, match="cut.ckpt"):
            cr.load(path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"PK\x03\x04",
                                     bytes(np.random.default_rng(0).integers(0, 256, 5000,
                                                                               np.uint8)),
                                     b'{"format": "chainrule-checkpoint"}'],
                         ids=["empty", "zeros", "zip magic only", "random bytes", "bare json"])
def test_foreign_bytes(tmp_path, content):
    path = tmp_path / "foreign.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        cr.load(path)


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def header(root, **extra):
    return json.dumps({"format": "chainrule-checkpoint", "version": 1, "root": root, **extra})


@pytest.mark.parametrize("entries, words", [
    ({"data.npy": b"x"}, "structure.json"),
    ({"structure.json": b"not json"}, "not a chainrule checkpoint"),
    ({"structure.json": b"\xff\xfe\x00"}, "not a chainrule checkpoint"),
    ({"structure.json": json.dumps({"format": "other", "root": 1})}, "not a chainrule"),
    ({"structure.json": json.dumps([1, 2])}, "not a chainrule"),
    ({"structure.json": header(1, version=99)}, "newer"),
    ({"structure.json": header({"array": "a0"})}, "missing the array a0"),
    ({"structure.json": header({"array": "a0"}), "a0.npy": b"\x93NUMPY garbage"}, "truncated"),
    ({"structure.json": header({"set": [1, 2]})}, "unknown entry"),
    ({"structure.json": header({"dict": [[1, 2]], "list": []})}, "malformed"),
    ({"structure.json": json.dumps({"format": "chainrule-checkpoint", "version": 1})}, None),
    ({"structure.json": header({"dict": [["a"]]})}, None),
], ids=["no structure", "bad json", "not utf-8", "other format", "not a header", "newer",
        "missing array", "bad npy", "unknown kind", "two kinds", "no root", "bad pair"])
def test_foreign_zip_archives(tmp_path, entries, words):
    path = write_zip(tmp_path / "foreign.ckpt", entries)
    with pytest.raises(CheckpointError, match=words):
        cr.load(path)


def test_missing_file_or_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        cr.load(tmp_path / "nothing.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        cr.load(tmp_path)


def patch_central_directory(data, offset, value):
    """Set a 2-byte field of the first central-directory entry (structure.json)."""
    start = data.index(b"PK\x01\x02")
    data = bytearray(data)
    data[start + offset:start + offset + 2] = value.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize("field, value", [(8, 0x0001), (10, 99)],
                         ids=["encrypted flag", "unknown compression method"])
def test_zip_features_load_cannot_read(tmp_path, checkpoint_bytes, field, value):
    path = tmp_path / "odd.ckpt"
    path.write_bytes(patch_central_directory(checkpoint_bytes, field, value))
    with pytest.raises(CheckpointError):
        cr.load(path)


def test_any_single_corrupted_byte_loads_or_raises_checkpoint_error(tmp_path,
                                                                    checkpoint_bytes):
    path = tmp_path / "flipped.ckpt"
    escaped = {}
    for i in range(len(checkpoint_bytes)):
        for mask in (0x01, 0xFF):
            data = bytearray(checkpoint_bytes)
            data[i] ^= mask
            rewrite(path, data)
            try:
                cr.load(path)
            except CheckpointError:
                pass
            except Exception as e:  # noqa: BLE001 - collecting what escapes is the point
                escaped.setdefault(type(e).__name__, i)
    assert escaped == {}


# ----- atomic writes ---------------------------------------------------------------------------
def failing_on_second_array(monkeypatch):
    real = np.lib.format.write_array
    calls = []

    def write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_array)


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    old = {"model": nn.MLP(2, [3], 2, seed=0).state_dict(), "epoch": 1}
    cr.save(old, path)
    before = path.read_bytes()
    failing_on_second_array(monkeypatch)
    new = {"model": nn.MLP(2, [3], 2, seed=1).state_dict(), "epoch": 2}
    with pytest.raises(OSError, match="disk full"):
        cr.save(new, path)
    assert path.read_bytes() == before
    assert_same(cr.load(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]  # no temporary files left


def test_failed_first_save_creates_no_file(tmp_path, monkeypatch):
    failing_on_second_array(monkeypatch)
    with pytest.raises(OSError):
        cr.save([np.zeros(2), np.ones(2)], tmp_path / "new.ckpt")
    assert list(tmp_path.iterdir()) == []
