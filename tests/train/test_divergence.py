"""No option or loss turns divergence into a saved NaN model with exit status 0."""

import numpy as np
import pytest

from chainrule import cli
from chainrule.experiment import RunConfig
from chainrule.experiment import train as run_experiment
from chainrule.serialization import load
from chainrule.train import Callback, TrainingDiverged


def main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def every_array(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from every_array(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from every_array(value)


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_a_diverging_run_fails_and_saves_no_model(tmp_path, capsys, loss):
    out = tmp_path / "run"
    code, _, err = main(capsys, "train", "--dataset", "xor", "--loss", loss, "--lr", "1e30",
                        "--optimizer", "sgd", "--epochs", "3", "--quiet", "--out", out)
    assert code == 2 and "training diverged" in err and err.count("\n") == 1
    assert not (out / "model.crk").exists()
    for name in ("checkpoint.crk", "best.crk"):
        if (out / name).exists():
            assert all(np.isfinite(a).all() for a in every_array(load(out / name)))


@pytest.mark.parametrize("option, value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--reg", "nan"), ("--weight-decay", "inf"),
    ("--momentum", "nan"), ("--dropout", "nan"), ("--seed", "-1"),
])
def test_non_finite_or_negative_options_are_refused(tmp_path, capsys, option, value):
    code, _, err = main(capsys, "train", "--dataset", "xor", option, value, "--epochs", "1",
                        "--out", tmp_path / "run")
    assert code == 2 and option in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


class Poison(Callback):
    """Makes a weight NaN after the last step of epoch 2, where the loss cannot see it."""

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            next(trainer.model.parameters()).data[0, 0] = np.nan


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    out = tmp_path / "run"
    config = RunConfig(dataset="xor", epochs=3, out=str(out))
    with pytest.raises(TrainingDiverged, match="parameter 0.weight is no longer finite"):
        run_experiment(config, progress=False, callbacks=[Poison()])
    assert load(out / "checkpoint.crk")["epoch"] == 1
    assert not (out / "model.crk").exists()
