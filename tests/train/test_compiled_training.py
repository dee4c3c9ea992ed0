"""The Trainer compiles its step by default: the same numbers as eager steps, exactly,
through schedules, dropout, early stopping and a run killed mid-epoch and resumed."""

import json

import numpy as np
import pytest

from chainrule import cli
from chainrule.train import Callback

from .test_resume import CASES, assert_same_run, make_trainer, run_config


@pytest.fixture(scope="module")
def spiral():
    from chainrule.experiment import RunConfig, prepare_data

    data, _ = prepare_data(RunConfig(dataset="spiral", seed=3))
    return data


@pytest.mark.parametrize("case", list(CASES))
def test_a_compiled_run_equals_an_eager_run(case, spiral):
    config = run_config(case)
    eager = make_trainer(config, spiral, None)
    eager.compile = False
    compiled = make_trainer(config, spiral, None)
    assert_same_run(eager, eager.fit(spiral), compiled, compiled.fit(spiral))
    step = compiled._compiled_step
    assert eager._compiled_step is None
    assert step.recordings <= 3 and step.replays > 10 * step.recordings  # batch 32, 2 shapes


class StopAt(Callback):
    """Raise after a step's update (the compiled step runs whole), mid-epoch."""

    def __init__(self, epoch, step):
        self.at, self.epoch, self.steps = (epoch, step), 0, 0

    def on_epoch_begin(self, trainer, epoch):
        self.epoch, self.steps = epoch, 0

    def on_step_end(self, trainer):
        self.steps += 1
        if (self.epoch, self.steps) == self.at:
            raise KeyboardInterrupt


def test_a_compiled_run_killed_mid_epoch_and_resumed_equals_an_uninterrupted_one(
        spiral, tmp_path):
    config = run_config("adam-cosine-warmup-dropout")
    whole = make_trainer(config, spiral, tmp_path / "whole")
    whole_summary = whole.fit(spiral)
    killed = make_trainer(config, spiral, tmp_path / "run", callbacks=[StopAt(4, 3)])
    with pytest.raises(KeyboardInterrupt):
        killed.fit(spiral)
    assert killed._compiled_step.replays > 0
    resumed = make_trainer(config, spiral, tmp_path / "run")
    summary = resumed.fit(spiral, resume=True)
    assert_same_run(whole, whole_summary, resumed, summary)


def test_no_compile_gives_the_same_run_from_the_command_line(tmp_path, capsys):
    summaries = []
    for flags in ([], ["--no-compile"]):
        out = tmp_path / ("eager" if flags else "compiled")
        code = cli.main(["train", "--dataset", "spiral", "--epochs", "3", "--dropout", "0.2",
                         "--out", str(out), "--quiet", *flags])
        assert code == 0, capsys.readouterr().err
        summaries.append(json.loads((out / "summary.json").read_text()))
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "final_loss"):
        assert summaries[0][key] == summaries[1][key], key


def test_chainrule_compile_0_makes_the_trainer_run_eagerly(spiral, monkeypatch):
    monkeypatch.setenv("CHAINRULE_COMPILE", "0")
    trainer = make_trainer(run_config("momentum-step-dropout"), spiral, None, epochs=1)
    trainer.fit(spiral)
    assert trainer._compiled_step is None
    assert np.isfinite(trainer.history[-1]["train_loss"])
