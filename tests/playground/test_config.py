"""Playground settings, CSV uploads and the run's match with ``chainrule train``."""

from __future__ import annotations

import csv
import shlex
import time

import pytest

from chainrule.cli import main
from chainrule.playground.config import ConfigError, PlaygroundConfig
from chainrule.playground.data import MAX_UPLOAD_BYTES, UploadError, parse_csv


@pytest.mark.parametrize("values, message", [
    ({"datset": "circle"}, "unknown setting 'datset'"),
    ({"lr": "0.1"}, "lr: expected a number"),
    ({"lr": 1e9}, "lr: expected a number from"),
    ({"hidden": [4] * 7, "activations": ["relu"] * 7}, "at most 6"),
    ({"hidden": [17], "activations": ["relu"]}, "hidden: expected a whole number from 1 to 16"),
    ({"hidden": [4], "activations": ["relu", "tanh"]}, "one per hidden layer"),
    ({"activations": ["__import__('os')", "tanh"]}, "is not one of relu"),
    ({"features": []}, "non-empty list"),
    ({"batch_size": True}, "batch_size: expected a whole number"),
    ({"lr_schedule": "plateau", "warmup": 2}, "--warmup cannot be combined"),
    ({"dataset": "plane"}, "plane is not a classification data set"),
    ({"problem": "regression", "dataset": "plane"}, "loss: mse (squared error) for a"),
    ({"problem": "regression", "dataset": "circle", "loss": "mse"}, "circle is not a "),
    ([1, 2], "settings must be a JSON object"),
])
def test_settings_are_checked_strictly(values, message):
    with pytest.raises(ConfigError, match=None) as info:
        PlaygroundConfig.parse(values)
    assert message in str(info.value)


def test_the_command_has_every_setting():
    config = PlaygroundConfig.parse({"dataset": "spiral", "noise": 0.2, "classes": 3,
                                     "optimizer": "momentum", "regularization": "L2",
                                     "reg_rate": 0.01, "patience": 5})
    assert config.command() == (
        "chainrule train --dataset spiral --hidden 4 2 --activation tanh --loss softmax "
        "--optimizer momentum --lr 0.03 --batch-size 10 --epochs 200 --seed 0 "
        "--momentum 0.9 --reg 0.01 --patience 5 --out runs/playground --quiet")
    other = PlaygroundConfig.parse({"features": ["x1", "x2", "sin(x1)"], "regularization": "L1",
                                    "activations": ["relu", "tanh"], "train_ratio": 70})
    assert other.command() == (
        "chainrule train --data playground-data.csv --hidden 4 2 --activation relu tanh "
        "--features x1 x2 'sin(x1)' --loss softmax --optimizer adam --lr 0.03 --batch-size 10 "
        "--epochs 200 --seed 0 --l1 0.001 --out runs/playground --quiet")
    regression = PlaygroundConfig.parse({"dataset": "plane", "problem": "regression",
                                         "loss": "mse"})
    assert "--data playground-data.csv" in regression.command()
    assert "--loss mse" in regression.command()


@pytest.mark.parametrize("text, message", [
    ("x1,x2,label\n0,0,0\n1,abc,1\n", "line 3: '1' or 'abc' is not a number"),
    ("0,0,0,4\n", "line 1: expected 3 columns"),
    ("1,2,-1\n", "line 1: the label '-1' is not a whole number from 0 to 7"),
    ("1,2,0.25\n", "'0.25' is not a whole number from 0 to 7 (real-valued targets make a "
                   "regression"),
    ("1,nan,1\n", "line 1: coordinates must be finite"),
    ("".join(f"{i},{i},0\n" for i in range(20)), "at least two classes"),
    ("".join(f"{i},{i},{2 * (i % 2)}\n" for i in range(20)), "no row has label 1"),
    ("0,0,0\n1,1,1\n", "at least 10 rows"),
    ("0," * (MAX_UPLOAD_BYTES // 2 + 1), "larger than 1000 kB"),
])
def test_uploads_are_parsed_strictly(text, message):
    with pytest.raises(UploadError) as info:
        parse_csv(text)
    assert message in str(info.value)


def test_an_upload_with_a_header():
    X, y = parse_csv("x1,x2,label\n" + "".join(f"{i / 10},{-i / 10},{i % 3}\n"
                                               for i in range(30)))
    assert X.shape == (30, 2) and y.tolist()[:4] == [0, 1, 2, 0]


def play_to_the_end(session, seconds=60):
    """Train a playground session as fast as it goes until its stop rule ends it."""
    session.epochs_per_second = 0
    session.play()
    deadline = time.monotonic() + seconds
    while not session.finished:
        assert time.monotonic() < deadline, f"the session did not finish in {seconds} s"
        time.sleep(0.02)


@pytest.mark.parametrize("settings", [
    {"dataset": "spiral", "noise": 0.2, "classes": 3, "hidden": [8, 8],
     "activations": ["relu", "relu"], "regularization": "L2", "lr_schedule": "cosine",
     "dropout": 0.1, "epochs": 12, "lr": 0.01},
    {"dataset": "gaussians", "classes": 3, "noise": 0.3, "train_ratio": 70,
     "features": ["x1", "x2", "x1^2", "sin(x2)"], "hidden": [5, 3],
     "activations": ["elu", "sigmoid"], "regularization": "L1", "reg_rate": 0.003,
     "optimizer": "nesterov", "lr_schedule": "step", "batch_size": 16, "epochs": 8},
    {"dataset": "multi-gaussian", "problem": "regression", "loss": "mse", "noise": 0.1,
     "features": ["x1", "x2", "x1*x2"], "hidden": [6], "activations": ["gelu"],
     "optimizer": "rmsprop", "lr": 0.01, "patience": 3, "epochs": 10},
], ids=["spiral-l2-cosine-dropout", "gaussians-features-l1-per-layer", "regression"])
def test_a_session_reproduces_chainrule_train_epoch_by_epoch(tmp_path, settings,
                                                             monkeypatch):
    from chainrule.playground.session import Session

    config = PlaygroundConfig.parse(settings)
    session = Session(config)
    try:
        play_to_the_end(session)
        ours = session.trainer.history
        (tmp_path / "playground-data.csv").write_text(session.data_csv())
    finally:
        session.stop()
    monkeypatch.chdir(tmp_path)  # where the command finds the exported data file
    command = shlex.split(config.command("run"))
    assert ("--data" in command) == (config.dataset != "spiral")
    assert main(command[1:]) == 0
    with open(tmp_path / "run" / "history.csv") as f:
        theirs = list(csv.DictReader(f))
    assert len(theirs) == len(ours) and len(ours) >= 4
    for a, b in zip(ours, theirs):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert ("" if a[key] is None else repr(a[key])) == b[key], (key, a["epoch"])


def test_the_exported_checkpoint_is_a_run_that_load_run_and_evaluate_read(tmp_path):
    import chainrule as cr
    from chainrule.experiment import evaluate
    from chainrule.playground.session import Session

    config = PlaygroundConfig.parse({
        "dataset": "gaussians", "classes": 3, "features": ["x1", "x2", "x1*x2", "sin(x1)"],
        "hidden": [5, 3], "activations": ["relu", "tanh"], "regularization": "L1",
        "epochs": 3})
    session = Session(config)
    try:
        play_to_the_end(session)
        (tmp_path / "playground.crk").write_bytes(session.checkpoint_bytes())
        (tmp_path / "playground-data.csv").write_text(session.data_csv())
        last = session.trainer.history[-1]
        with cr.no_grad():
            session.model.eval()
            expected = session.model(cr.tensor(session.data.X_val)).data.argmax(axis=1)
    finally:
        session.stop()
    run = cr.load_run(tmp_path / "playground.crk")  # raw points in, the run's features inside
    assert (run.predict(session.raw_test) == expected).all()
    results = evaluate(tmp_path / "playground.crk")  # from anywhere: the data file is beside it
    assert results["val"]["accuracy"] == last["val_accuracy"]
    assert results["val"]["loss"] == pytest.approx(last["val_loss"], rel=1e-6)
