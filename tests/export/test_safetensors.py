"""Weights in the safetensors format, checked against the safetensors library itself."""

import json

import numpy as np
import pytest

from chainrule import cli, nn
from chainrule.errors import CheckpointError
from chainrule.experiment import RunConfig, train
from chainrule.export import (
    load_run_model,
    load_safetensors,
    load_safetensors_metadata,
    save_safetensors,
)


def test_a_model_round_trips_by_state_dict_name(tmp_path):
    model = nn.MLP(4, [8, 6], 3, seed=0)
    path = save_safetensors(model, tmp_path / "w.safetensors")
    other = nn.MLP(4, [8, 6], 3, seed=1)
    other.load_state_dict(load_safetensors(path))
    for (name, a), (name_b, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert name == name_b
        np.testing.assert_array_equal(a, b)
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(model(X).data, other(X).data)


MIXED = {"f64": np.arange(6, dtype=np.float64).reshape(2, 3),
         "f16": np.array([1.5, -2.0], dtype=np.float16),
         "i64": np.array([[1, -2]], dtype=np.int64), "u8": np.arange(3, dtype=np.uint8),
         "flag": np.array([True, False]), "scalar": np.array(3.0, dtype=np.float32),
         "empty": np.zeros((0, 4), dtype=np.float32),
         "strided": np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]}


def test_the_safetensors_library_reads_what_we_write(tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is absent")
    path = save_safetensors(MIXED, tmp_path / "m.safetensors", metadata={"who": "me"})
    theirs = st.load_file(str(path))
    assert set(theirs) == set(MIXED)
    for name, value in MIXED.items():
        assert theirs[name].dtype == value.dtype
        np.testing.assert_array_equal(theirs[name], value)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"who": "me"}


def test_we_read_what_the_safetensors_library_writes(tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is absent")
    path = tmp_path / "theirs.safetensors"
    st.save_file({k: np.ascontiguousarray(v) for k, v in MIXED.items()}, str(path),
                 metadata={"k": "v"})
    ours = load_safetensors(path)
    for name, value in MIXED.items():
        assert ours[name].dtype == value.dtype
        np.testing.assert_array_equal(ours[name], value)
        assert ours[name].flags.writeable
    assert load_safetensors_metadata(path) == {"k": "v"}


def test_damaged_files_are_named(tmp_path):
    path = save_safetensors({"w": np.ones((4, 4), np.float32)}, tmp_path / "w.safetensors")
    data = path.read_bytes()
    (tmp_path / "short.safetensors").write_bytes(data[:-8])
    with pytest.raises(CheckpointError, match="'w' claims shape"):
        load_safetensors(tmp_path / "short.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="truncated or not a safetensors"):
        load_safetensors(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="no file"):
        load_safetensors(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="object"):
        save_safetensors({"w": np.array([None])}, tmp_path / "o.safetensors")


def test_a_run_exports_its_weights_and_options(tmp_path, capsys):
    run = tmp_path / "run"
    train(RunConfig(dataset="xor", hidden=[8], epochs=2, out=str(run)), progress=False)
    out = tmp_path / "xor.safetensors"
    assert cli.main(["export", "--checkpoint", str(run), "--format", "safetensors",
                     "--out", str(out)]) == 0
    model, scaler, config = load_run_model(run)
    weights = load_safetensors(out)
    assert list(weights) == list(model.state_dict())
    meta = load_safetensors_metadata(out)
    assert json.loads(meta["chainrule.config"])["hidden"] == [8]
    np.testing.assert_allclose(json.loads(meta["chainrule.scaler"])["mean"], scaler["mean"])
