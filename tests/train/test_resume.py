"""The key guarantee of the trainer: a run killed at any moment and then resumed ends with
exactly the numbers of an uninterrupted run with the same seed.

First in-process (a run stopped after k epochs, or interrupted in the middle of an epoch,
then continued by a fresh Trainer), then for real: ``python -m chainrule train`` killed
with SIGKILL at several moments, including while a checkpoint is being written.
"""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule.errors import CheckpointError
from chainrule.experiment import (
    RunConfig,
    build_model,
    build_optimizer,
    build_scheduler,
    prepare_data,
)
from chainrule.serialization import load
from chainrule.train import Callback, Trainer

COMPARED = ("train_accuracy", "val_accuracy", "train_loss", "val_loss", "final_loss",
            "epochs", "best_epoch", "stopped_early")

# (optimizer, schedule, warmup, dropout, patience, epochs): every piece of state matters:
# moment estimates, momentum buffers, the schedule's position, dropout's generator.
CASES = {
    "adam-cosine-warmup-dropout": ("adam", "cosine", 3, 0.2, None, 12),
    "momentum-step-dropout": ("momentum", "step", 0, 0.3, None, 12),
    "nesterov-plateau": ("nesterov", "plateau", 0, 0.1, None, 12),
    "rmsprop-exponential-warmup": ("rmsprop", "exponential", 2, 0.0, None, 12),
    "adamw-cosine-early-stopping": ("adamw", "cosine", 0, 0.2, 3, 40),
}


def run_config(case, seed=3):
    optimizer, schedule, warmup, dropout, patience, epochs = CASES[case]
    lr = 0.05 if optimizer in ("momentum", "nesterov") else 0.01
    return RunConfig(dataset="spiral", hidden=[32, 32], dropout=dropout, optimizer=optimizer,
                     lr=lr, lr_schedule=schedule, warmup=warmup, epochs=epochs,
                     patience=patience, batch_size=32, seed=seed).resolved()


@pytest.fixture(scope="module")
def spiral():
    data, _ = prepare_data(RunConfig(dataset="spiral", seed=3))
    return data


def make_trainer(config, data, out_dir, epochs=None, callbacks=()):
    """A fresh model, optimizer and schedule for ``config``; ``epochs`` cuts the run short
    (the schedule still spans config.epochs, as it does in a run that gets killed)."""
    model = build_model(config, data.num_features, data.num_classes)
    optimizer = build_optimizer(config, model.parameters())
    return Trainer(model, optimizer, loss=config.loss,
                   scheduler=build_scheduler(config, optimizer), reg=config.reg,
                   epochs=epochs or config.epochs, batch_size=config.batch_size,
                   patience=config.patience, seed=config.seed, out_dir=out_dir,
                   progress=False, callbacks=callbacks, config=config.to_dict())


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def assert_same_run(a_trainer, a_summary, b_trainer, b_summary):
    assert without_seconds(b_trainer.history) == without_seconds(a_trainer.history)
    for key in COMPARED:
        assert b_summary[key] == a_summary[key], key
    a_state, b_state = a_trainer.model.state_dict(), b_trainer.model.state_dict()
    assert a_state.keys() == b_state.keys()
    for name in a_state:
        assert np.array_equal(a_state[name], b_state[name]), name


@pytest.fixture(scope="module")
def uninterrupted(spiral, tmp_path_factory):
    """Each case trained from start to end without a break, computed once."""
    results = {}
    for case in CASES:
        config = run_config(case)
        trainer = make_trainer(config, spiral, tmp_path_factory.mktemp(case))
        results[case] = (trainer, trainer.fit(spiral))
    return results


# ----- in-process -------------------------------------------------------------------------
@pytest.mark.parametrize("stops", [(5,), (2, 7)], ids=["once", "twice"])
@pytest.mark.parametrize("case", list(CASES))
def test_stopped_and_resumed_equals_uninterrupted(case, stops, spiral, uninterrupted,
                                                  tmp_path):
    config = run_config(case)
    make_trainer(config, spiral, tmp_path, epochs=stops[0]).fit(spiral)
    for stop in stops[1:]:
        make_trainer(config, spiral, tmp_path, epochs=stop).fit(spiral, resume=True)
    resumed = make_trainer(config, spiral, tmp_path)
    summary = resumed.fit(spiral, resume=True)
    assert_same_run(*uninterrupted[case], resumed, summary)


def test_the_early_stopping_case_does_stop_early(uninterrupted):
    # Otherwise the case above would not show that resuming keeps the best weights.
    trainer, summary = uninterrupted["adamw-cosine-early-stopping"]
    assert summary["stopped_early"] is True
    assert 5 < summary["best_epoch"] < len(trainer.history) < 40


class Interrupt(Exception):
    pass


class KillAt(Callback):
    """Raise in the middle of an epoch, after the optimizer state has already moved on."""

    def __init__(self, epoch, step):
        self.epoch, self.step, self.current, self.steps = epoch, step, 0, 0

    def on_epoch_begin(self, trainer, epoch):
        self.current, self.steps = epoch, 0

    def on_after_backward(self, trainer):
        self.steps += 1
        if (self.current, self.steps) == (self.epoch, self.step):
            raise Interrupt


@pytest.mark.parametrize("case", ["adam-cosine-warmup-dropout", "momentum-step-dropout"])
def test_interrupted_mid_epoch_and_resumed_equals_uninterrupted(case, spiral, uninterrupted,
                                                                tmp_path):
    config = run_config(case)
    with pytest.raises(Interrupt):
        make_trainer(config, spiral, tmp_path, callbacks=[KillAt(6, 4)]).fit(spiral)
    assert load(tmp_path / "checkpoint.crk")["epoch"] == 5
    resumed = make_trainer(config, spiral, tmp_path)
    summary = resumed.fit(spiral, resume=True)
    assert_same_run(*uninterrupted[case], resumed, summary)


def test_resuming_a_finished_run_changes_nothing(spiral, uninterrupted, tmp_path):
    case = "adam-cosine-warmup-dropout"
    config = run_config(case)
    make_trainer(config, spiral, tmp_path).fit(spiral)
    again = make_trainer(config, spiral, tmp_path)
    summary = again.fit(spiral, resume=True)
    assert_same_run(*uninterrupted[case], again, summary)


def test_resume_without_a_checkpoint_says_where_it_looked(spiral, tmp_path):
    config = run_config("adam-cosine-warmup-dropout")
    with pytest.raises(CheckpointError, match="checkpoint.crk"):
        make_trainer(config, spiral, tmp_path).fit(spiral, resume=True)


def test_resume_into_a_different_model_is_refused(spiral, tmp_path):
    config = run_config("adam-cosine-warmup-dropout")
    make_trainer(config, spiral, tmp_path, epochs=2).fit(spiral)
    other = RunConfig(**{**config.to_dict(), "hidden": [16]}).resolved()
    with pytest.raises(CheckpointError):
        make_trainer(other, spiral, tmp_path).fit(spiral, resume=True)


def test_a_resumed_run_removes_temp_files_left_by_a_killed_write(spiral, tmp_path):
    config = run_config("adam-cosine-warmup-dropout")
    make_trainer(config, spiral, tmp_path, epochs=3).fit(spiral)
    # What SIGKILL during save() leaves behind: a half-written hidden temporary file.
    complete = (tmp_path / "checkpoint.crk").read_bytes()
    stale = tmp_path / ".checkpoint.crk.0123456789ab.tmp"
    stale.write_bytes(complete[: len(complete) // 2])
    make_trainer(config, spiral, tmp_path).fit(spiral, resume=True)
    assert not list(tmp_path.glob(".*.tmp"))


# ----- for real: SIGKILL a training process ---------------------------------------------
ARGS = ["--dataset", "spiral", "--epochs", "60", "--hidden", "128", "128", "--batch-size", "4",
        "--dropout", "0.1", "--optimizer", "adam", "--lr-schedule", "cosine", "--warmup", "3",
        "--seed", "7", "--quiet"]


def chainrule(*args):
    return [sys.executable, "-m", "chainrule", *args]


def run(out, *extra):
    return subprocess.run(chainrule("train", *ARGS, "--out", str(out), *extra),
                          capture_output=True, text=True, timeout=240)


def read_history(out):
    """history.csv without the wall-clock column, as the text written (exact floats)."""
    with open(out / "history.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def read_summary(out):
    summary = json.loads((out / "summary.json").read_text())
    return {key: summary[key] for key in COMPARED}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    done = run(out)
    assert done.returncode == 0, done.stderr
    return read_summary(out), read_history(out)


def kill_when(out, condition, timeout=120.0):
    """Start the training run and SIGKILL it as soon as ``condition(out, elapsed)`` holds.

    Returns whether the process was killed while running (not already finished)."""
    process = subprocess.Popen(chainrule("train", *ARGS, "--out", str(out)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    try:
        while process.poll() is None:
            elapsed = time.perf_counter() - started
            if condition(out, elapsed) or elapsed > timeout:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def names(out):
    try:
        return os.listdir(out)
    except FileNotFoundError:
        return []


def writing_a_checkpoint(after_epoch):
    """Once ``after_epoch`` epochs are done: as soon as the next checkpoint's temporary file
    exists, i.e. the process is inside save()."""
    def condition(out, elapsed):
        present = names(out)
        return any(n.startswith(".checkpoint.crk.") and n.endswith(".tmp") for n in present) \
            and epochs_done(out) >= after_epoch

    return condition


def checkpoint_exists(out, elapsed):
    return "checkpoint.crk" in names(out)


def after(delay):
    return lambda out, elapsed: elapsed >= delay


def epochs_done(out):
    try:
        return max(len((out / "history.csv").read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


def in_epoch(epoch, extra):
    """``extra`` seconds after ``epoch - 1`` epochs are in history.csv (load-independent)."""
    reached = {}

    def condition(out, elapsed):
        if "at" not in reached and epochs_done(out) >= epoch - 1:
            reached["at"] = elapsed
        return "at" in reached and elapsed >= reached["at"] + extra

    return condition


def assert_nothing_half_written(out: Path):
    if not out.exists():  # killed before the first checkpoint made the folder
        return
    for path in out.glob("*.crk"):
        load(path)  # raises CheckpointError if truncated
    for path in out.iterdir():
        # Whatever a killed write leaves is a hidden temporary file, never a *.crk name.
        assert path.suffix != ".tmp" or path.name.startswith("."), path.name


def resume_or_restart(out):
    """Resume the killed run; with no checkpoint yet, --resume fails cleanly (exit 2, one
    line) and the run is started again from scratch."""
    if (out / "checkpoint.crk").exists():
        done = run(out, "--resume")
    else:
        refused = run(out, "--resume")
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "checkpoint" in lines[0], refused.stderr
        assert "Traceback" not in refused.stderr
        done = run(out)
    assert done.returncode == 0, done.stderr


_RANDOM = random.Random(20240607)
MOMENTS = {
    "at-start": after(0.0),
    "first-checkpoint": checkpoint_exists,
    "during-checkpoint-write": writing_a_checkpoint(_RANDOM.randint(5, 40)),
    "random-delay": after(_RANDOM.uniform(0.5, 1.5)),
    "random-late-epoch": in_epoch(_RANDOM.randint(30, 55), _RANDOM.uniform(0.0, 0.03)),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_then_resume_equals_uninterrupted(moment, reference_run, tmp_path):
    out = tmp_path / "run"
    killed = kill_when(out, MOMENTS[moment])
    had_checkpoint = (out / "checkpoint.crk").exists()
    if os.environ.get("SHOW_KILLS"):
        epoch = load(out / "checkpoint.crk")["epoch"] if had_checkpoint else None
        temps = [n for n in names(out) if n.endswith(".tmp")]
        print(f"\n{moment}: killed={killed} checkpoint epoch={epoch} temps={temps}")
    if moment == "at-start":
        assert killed and not had_checkpoint
    if moment in ("first-checkpoint", "during-checkpoint-write"):
        assert killed and had_checkpoint
        assert load(out / "checkpoint.crk")["epoch"] < 60  # really mid-run
    assert_nothing_half_written(out)
    left_by_the_kill = {n for n in names(out) if n.endswith(".tmp")}
    resume_or_restart(out)
    assert_nothing_half_written(out)
    assert {n for n in names(out) if n.endswith(".tmp")} <= left_by_the_kill
    summary, history = reference_run
    assert read_summary(out) == summary
    assert read_history(out) == history
    assert len(history) == 60

