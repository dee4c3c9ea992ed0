"""A sweep trial checkpoints every so many seconds: its finished folder still holds the
last epoch's checkpoint and the history of a trial checkpointed after every epoch.
(Resuming between sparse checkpoints: tests/train/test_checkpoint_every.py.)"""

import csv
import json

from chainrule.experiment import RunConfig
from chainrule.serialization import load
from chainrule.sweep.trial import run_trial


def history(folder):
    with open(folder / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_a_trial_with_sparse_checkpoints_ends_as_one_checkpointed_every_epoch(tmp_path):
    config = RunConfig(dataset="spiral", hidden=[16], epochs=6, lr=0.02)
    task = {"index": 0, "config": config.to_dict(), "dir": str(tmp_path / "t"),
            "checkpoint_every": 3600.0}
    outcome = run_trial(task)
    assert outcome["status"] == "ok" and outcome["epochs"] == 6
    assert load(tmp_path / "t" / "checkpoint.crk")["epoch"] == 6  # the last epoch's
    assert json.loads((tmp_path / "t" / "trial.json").read_text())["status"] == "ok"
    every_epoch = run_trial({**task, "dir": str(tmp_path / "e"), "checkpoint_every": None})
    assert history(tmp_path / "t") == history(tmp_path / "e")
    assert outcome["val_accuracy"] == every_epoch["val_accuracy"]
