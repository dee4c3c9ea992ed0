"""The ``chainrule`` command line: ``train`` and ``evaluate`` as a user types them.

Mostly in-process through ``cli.main(argv)`` (its exit code, stdout and stderr), plus a
few real runs of ``python -m chainrule`` and of the ``chainrule`` console script.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule import cli
from chainrule.experiment import OPTIMIZERS, SCHEDULES, RunConfig, build_model
from chainrule.experiment import train as run_experiment
from chainrule.nn import ACTIVATIONS, Linear
from chainrule.serialization import load
from chainrule.train import LOSSES, REGRESSION_LOSSES, Callback

PNG = b"\x89PNG\r\n\x1a\n"


def main(capsys, *argv):
    """Run the command line in-process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_json(path):
    return json.loads(Path(path).read_text())


def history_rows(out):
    with open(Path(out) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG, path


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    """``train --dataset spiral --hidden 100 --epochs 5 --out D --quiet``, run once."""
    out = tmp_path_factory.mktemp("spiral") / "run"
    code = cli.main(["train", "--dataset", "spiral", "--hidden", "100", "--epochs", "5",
                     "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("digits") / "run"
    code = cli.main(["train", "--dataset", "digits", "--epochs", "3", "--out", str(out),
                     "--quiet"])
    assert code == 0
    return out


# ----- train: what a run writes -----------------------------------------------------------
def test_train_writes_its_reports_checkpoints_and_pictures(spiral_run):
    pytest.importorskip("matplotlib")
    out = spiral_run
    for name in ("summary.json", "history.csv", "checkpoint.crk", "best.crk", "model.crk",
                 "curves.png", "boundary.png"):
        assert (out / name).is_file(), name
    assert not (out / "templates.png").exists()  # 2-D points are not images
    assert_png(out / "curves.png")
    assert_png(out / "boundary.png")
    summary = read_json(out / "summary.json")
    assert summary["epochs"] == 5
    assert summary["config"]["dataset"] == "spiral"
    assert summary["config"]["hidden"] == [100]
    assert summary["config"]["epochs"] == 5
    assert 0.0 <= summary["train_accuracy"] <= 1.0 and 0.0 <= summary["val_accuracy"] <= 1.0
    rows = history_rows(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert float(rows[-1]["train_loss"]) == summary["final_loss"]
    assert not list(out.glob(".*.tmp"))


def test_train_prints_a_short_summary_and_nothing_on_stderr(capsys, tmp_path):
    code, out, err = main(capsys, "train", "--dataset", "xor", "--epochs", "2", "--quiet")
    assert code == 0 and err == ""
    assert "2 epochs" in out and "train_accuracy" in out and "val_accuracy" in out
    code, out, err = main(capsys, "train", "--dataset", "xor", "--epochs", "2", "--quiet",
                          "--out", tmp_path / "r")
    assert code == 0 and err == ""
    assert str(tmp_path / "r") in out


def test_digits_writes_templates_and_reports_test_accuracy(digits_run):
    pytest.importorskip("matplotlib")
    assert_png(digits_run / "templates.png")
    assert_png(digits_run / "curves.png")
    assert not (digits_run / "boundary.png").exists()
    summary = read_json(digits_run / "summary.json")
    assert 0.0 <= summary["test_accuracy"] <= 1.0


def test_hidden_none_gives_the_linear_classifier(capsys, tmp_path):
    out = tmp_path / "linear"
    code, _, err = main(capsys, "train", "--dataset", "spiral", "--hidden", "none",
                        "--epochs", "2", "--out", out, "--quiet")
    assert code == 0, err
    saved = load(out / "model.crk")
    config = RunConfig.from_dict(saved["config"])
    assert config.hidden == []
    model = build_model(config, 2, 3)
    assert [type(m) for m in model] == [Linear]
    model.load_state_dict(saved["model"])
    assert sorted(saved["model"]) == ["0.bias", "0.weight"]
    assert saved["model"]["0.weight"].shape == (3, 2)


def test_several_hidden_sizes_give_a_deeper_net(capsys, tmp_path):
    out = tmp_path / "deep"
    code, _, err = main(capsys, "train", "--dataset", "moons", "--hidden", "16", "8",
                        "--epochs", "2", "--out", out, "--quiet")
    assert code == 0, err
    shapes = [w.shape for name, w in load(out / "model.crk")["model"].items()
              if name.endswith("weight")]
    assert shapes == [(16, 2), (8, 16), (2, 8)]


# ----- every choice runs --------------------------------------------------------------------
@pytest.mark.parametrize(
    "option",
    [("--optimizer", name) for name in OPTIMIZERS]
    + [("--lr-schedule", name) for name in SCHEDULES]
    + [("--activation", name) for name in ACTIVATIONS]
    + [("--loss", name) for name in LOSSES if name not in REGRESSION_LOSSES],
    ids=lambda option: f"{option[0][2:]}={option[1]}")
def test_every_choice_trains_two_epochs_on_spiral(capsys, option):
    code, out, err = main(capsys, "train", "--dataset", "spiral", "--epochs", "2", "--quiet",
                          *option)
    assert code == 0, err
    assert err == "" and "2 epochs" in out


def test_warmup_then_cosine_shapes_the_learning_rate(capsys, tmp_path):
    out = tmp_path / "warm"
    code, _, err = main(capsys, "train", "--dataset", "spiral", "--epochs", "8", "--lr", "0.01",
                        "--warmup", "2", "--lr-schedule", "cosine", "--out", out, "--quiet")
    assert code == 0, err
    lrs = [float(r["lr"]) for r in history_rows(out)]
    assert lrs[0] == pytest.approx(0.001)  # warm-up starts at a tenth of the rate
    assert lrs[0] < lrs[1] < lrs[2]
    assert lrs[2] == pytest.approx(0.01)  # the full rate once warm-up is over
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))  # then cosine decay


def test_patience_stops_a_run_early(capsys, tmp_path):
    out = tmp_path / "patient"
    code, _, err = main(capsys, "train", "--dataset", "spiral", "--epochs", "300",
                        "--patience", "3", "--lr", "0.05", "--out", out, "--quiet")
    assert code == 0, err
    summary = read_json(out / "summary.json")
    assert summary["stopped_early"] is True and summary["epochs"] < 300
    assert summary["epochs"] == summary["best_epoch"] + 3


# ----- user errors: one line on stderr, exit status 2 ---------------------------------------
def make_garbage_run(folder, name):
    folder.mkdir()
    (folder / name).write_bytes(b"this is not a checkpoint\n" * 10)
    return folder


USER_ERRORS = {
    "no-subcommand": ([], None),
    "unknown-subcommand": (["fly"], "fly"),
    "unknown-dataset": (["train", "--dataset", "imagenet"], "imagenet"),
    "unknown-activation": (["train", "--activation", "swish"], "swish"),
    "unknown-optimizer": (["train", "--optimizer", "lbfgs"], "lbfgs"),
    "unknown-loss": (["train", "--loss", "mse"], "mse"),
    "unknown-schedule": (["train", "--lr-schedule", "cyclic"], "cyclic"),
    "hidden-0": (["train", "--hidden", "0"], "hidden"),
    "hidden-negative": (["train", "--hidden", "-3"], "hidden"),
    "hidden-abc": (["train", "--hidden", "abc"], "abc"),
    "hidden-none-mixed": (["train", "--hidden", "none", "5"], "hidden"),
    "epochs-0": (["train", "--epochs", "0"], "epochs"),
    "epochs-fraction": (["train", "--epochs", "2.5"], "epochs"),
    "batch-size-negative": (["train", "--batch-size", "-1"], "batch-size"),
    "lr-negative": (["train", "--lr", "-1"], "lr"),
    "lr-zero": (["train", "--lr", "0"], "lr"),
    "dropout-1.5": (["train", "--dropout", "1.5"], "dropout"),
    "momentum-1": (["train", "--momentum", "1"], "momentum"),
    "weight-decay-negative": (["train", "--weight-decay", "-0.1"], "weight-decay"),
    "reg-negative": (["train", "--reg", "-1"], "reg"),
    "warmup-negative": (["train", "--warmup", "-1"], "warmup"),
    "patience-0": (["train", "--patience", "0"], "patience"),
    "warmup-with-plateau": (["train", "--warmup", "2", "--lr-schedule", "plateau"], "plateau"),
    "missing-mnist": (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"],
                      "/nonexistent"),
    "resume-without-out": (["train", "--resume"], "--out"),
    "resume-without-checkpoint": (["train", "--resume", "--out", "{tmp}"], "checkpoint"),
    "resume-corrupt-checkpoint": (["train", "--resume", "--out", "{garbage-checkpoint}"],
                                  "checkpoint.crk"),
    "evaluate-nonexistent": (["evaluate", "--checkpoint", "/nonexistent"], "/nonexistent"),
    "evaluate-corrupt-checkpoint": (["evaluate", "--checkpoint", "{garbage-checkpoint}"],
                                    "checkpoint.crk"),
    "evaluate-corrupt-model": (["evaluate", "--checkpoint", "{garbage-model}"], "model.crk"),
    "evaluate-without-checkpoint": (["evaluate"], "--checkpoint"),
    "out-under-a-file": (["train", "--dataset", "xor", "--epochs", "1", "--out",
                          "{file}/run"], None),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_a_user_error_prints_one_line_and_exits_2(case, capsys, tmp_path):
    argv, expected = USER_ERRORS[case]
    places = {"{tmp}": tmp_path / "empty",
              "{garbage-checkpoint}": tmp_path / "bad-checkpoint",
              "{garbage-model}": tmp_path / "bad-model",
              "{file}": tmp_path / "a-file"}
    (tmp_path / "empty").mkdir()
    make_garbage_run(tmp_path / "bad-checkpoint", "checkpoint.crk")
    make_garbage_run(tmp_path / "bad-model", "model.crk")
    (tmp_path / "a-file").write_text("not a folder")
    for key, path in places.items():
        argv = [a.replace(key, str(path)) for a in argv]
    code, out, err = main(capsys, *argv, *(["--quiet"] if argv[:1] == ["train"] else []))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("chainrule: error:"), err
    assert "Traceback" not in err and out == ""
    if expected is not None:
        assert expected in lines[0]


def test_missing_data_says_where_it_looked(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    for dataset in ("mnist", "fashion-mnist", "cifar10"):
        if dataset == "fashion-mnist" and Path("/usr/share/datasets/fashion-mnist").is_dir():
            continue  # installed system-wide: not missing here
        code, _, err = main(capsys, "train", "--dataset", dataset, "--quiet")
        assert code == 2
        assert len(err.splitlines()) == 1, err
        assert str(tmp_path / dataset) in err


# ----- evaluate -----------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["spiral_run", "digits_run"])
def test_evaluate_prints_json_matching_the_summary(run, capsys, request):
    out = request.getfixturevalue(run)
    code, printed, err = main(capsys, "evaluate", "--checkpoint", out)
    assert code == 0 and err == ""
    results = json.loads(printed)
    summary = read_json(out / "summary.json")
    assert results["train"]["accuracy"] == summary["train_accuracy"]
    assert results["val"]["accuracy"] == summary["val_accuracy"]
    assert results["train"]["loss"] == pytest.approx(summary["train_loss"], rel=1e-6)
    if "test_accuracy" in summary:
        assert results["test"]["accuracy"] == summary["test_accuracy"]
    else:
        assert "test" not in results


# ----- resume -----------------------------------------------------------------------------
class Interrupt(Exception):
    pass


class StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == self.epoch:
            raise Interrupt  # after this epoch's record, before its checkpoint


def interrupted_run(out, **options):
    config = RunConfig(dataset="spiral", hidden=[16], epochs=6, out=str(out), **options)
    with pytest.raises(Interrupt):
        run_experiment(config, progress=False, callbacks=[StopAfter(4)])
    assert load(out / "checkpoint.crk")["epoch"] == 3
    return config


def test_resume_continues_with_the_options_saved_with_the_run(capsys, tmp_path):
    config = interrupted_run(tmp_path / "run", dropout=0.1)
    code, _, err = main(capsys, "train", "--resume", "--out", tmp_path / "run", "--quiet",
                        "--hidden", "7", "--epochs", "2", "--dropout", "0", "--seed", "9")
    assert code == 2 and err.count("\n") == 1  # other options are refused, not ignored
    assert "--hidden" in err and "--seed" in err
    assert "--epochs" not in err  # a new length extends the run
    code, _, err = main(capsys, "train", "--resume", "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["config"]["hidden"] == [16]
    assert summary["config"]["dropout"] == 0.1
    assert summary["config"]["seed"] == 0
    assert summary["epochs"] == 6
    assert load(tmp_path / "run" / "model.crk")["model"]["0.weight"].shape == (16, 2)

    straight = run_experiment(RunConfig(**{**config.to_dict(), "out": str(tmp_path / "b")}),
                              progress=False)
    for key in ("train_accuracy", "val_accuracy", "final_loss", "train_loss"):
        assert summary[key] == straight[key], key


def test_a_moved_run_folder_can_be_resumed(capsys, tmp_path):
    interrupted_run(tmp_path / "first")
    shutil.move(tmp_path / "first", tmp_path / "moved")
    code, _, err = main(capsys, "train", "--resume", "--out", tmp_path / "moved", "--quiet")
    assert code == 0, err
    assert read_json(tmp_path / "moved" / "summary.json")["epochs"] == 6


# ----- the real programs ------------------------------------------------------------------
def test_python_dash_m_chainrule_help():
    done = subprocess.run([sys.executable, "-m", "chainrule", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    for command in ("train", "evaluate", "demo"):
        assert command in done.stdout
    done = subprocess.run([sys.executable, "-m", "chainrule", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--hidden" in done.stdout and "--resume" in done.stdout


def test_a_diverging_run_reports_one_line(tmp_path):
    # In a real process: pytest would otherwise swallow the warnings that a user sees.
    done = subprocess.run([sys.executable, "-m", "chainrule", "train", "--dataset", "spiral",
                           "--hidden", "none", "--optimizer", "sgd", "--lr", "1e38", "--out",
                           str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "diverged at epoch 1" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def console_script():
    found = shutil.which("chainrule", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the chainrule console script is not installed next to this Python")
    return found


def test_the_console_script_trains_evaluates_and_reports_errors(tmp_path):
    script = console_script()
    env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:chainrule"}
    done = subprocess.run([script, "train", "--dataset", "xor", "--epochs", "3", "--out",
                           str(tmp_path / "xor"), "--quiet"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    done = subprocess.run([script, "evaluate", "--checkpoint", str(tmp_path / "xor")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["val"]["accuracy"] == read_json(tmp_path / "xor" / "summary.json")[
        "val_accuracy"]
    done = subprocess.run([script, "train", "--hidden", "0"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_all_checkpoints_of_a_run_load_without_pickle(spiral_run):
    for path in spiral_run.glob("*.crk"):
        state = load(path)
        assert isinstance(state, dict)
        arrays = [v for v in state["model"].values()]
        assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays)


# ----- own points, input features, L1, an activation per layer, regression -------------------
@pytest.mark.parametrize("argv, message", [
    (["--dataset", "xor", "--data", "p.csv"], "give it or --dataset, not both"),
    (["--dataset", "circles", "--loss", "mse"], "--loss mse is a regression loss"),
    (["--dataset", "digits", "--features", "x1", "x2^2"], "computed from 2-D points"),
    (["--dataset", "xor", "--hidden", "4", "--activation", "relu", "tanh"],
     "2 names for 1 hidden layers"),
    (["--dataset", "xor", "--l1", "-0.1"], "--l1 must not be negative"),
    (["--data", "missing.csv"], "--data missing.csv: no such file"),
    (["--data", "bad.csv"], "--data bad.csv: line 2: the split 'test' is not train or val"),
])
def test_new_options_refuse_bad_input_in_one_line(capsys, tmp_path, monkeypatch, argv,
                                                  message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("x1,x2,label,split\n0,0,0,test\n")
    code, out, err = main(capsys, "train", *argv, "--epochs", "1", "--quiet", "--out", "r")
    assert code == 2 and message in err and err.count("\n") == 1


def test_own_points_with_features_l1_and_an_activation_per_layer(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    rows = [f"{a!r},{b!r},{int(a * b > 0)},{'val' if k % 4 == 0 else 'train'}"
            for k, (a, b) in enumerate(X.tolist())]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    code, _, err = main(capsys, "train", "--data", tmp_path / "p.csv", "--features", "x1",
                        "x2", "x1*x2", "--hidden", "5", "3", "--activation", "relu", "tanh",
                        "--l1", "0.001", "--epochs", "30", "--quiet", "--out", out)
    assert code == 0, err
    summary = read_json(out / "summary.json")
    assert summary["val_accuracy"] > 0.9  # x1*x2 is the answer: one feature away
    model = load(out / "model.crk")
    assert model["model"]["0.weight"].shape == (5, 3)  # three input features
    assert model["config"]["activation"] == ["relu", "tanh"]
    layers = [type(m).__name__ for m in build_model(RunConfig.from_dict(model["config"]),
                                                    3, 2)]
    assert layers == ["Linear", "ReLU", "Linear", "Tanh", "Linear"]
    with open(out / "history.csv") as f:
        assert len(f.readlines()) == 31  # 150 training rows, 50 validation rows
    code, printed, _ = main(capsys, "evaluate", "--checkpoint", out)
    assert json.loads(printed)["val"]["accuracy"] == summary["val_accuracy"]


def test_a_regression_on_own_points(capsys, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(150, 2))
    (tmp_path / "h.csv").write_text("".join(f"{a!r},{b!r},{a + 2 * b!r}\n"
                                            for a, b in X.tolist()))
    out = tmp_path / "run"
    code, printed, err = main(capsys, "train", "--data", tmp_path / "h.csv", "--loss", "mse",
                              "--hidden", "8", "--epochs", "40", "--quiet", "--out", out)
    assert code == 0, err
    assert "val_loss" in printed and "accuracy" not in printed
    summary = read_json(out / "summary.json")
    assert summary["val_accuracy"] is None and summary["val_loss"] < 0.05
    import chainrule as cr

    run = cr.load_run(out)
    assert run.predict([[0.5, 0.25]]) == pytest.approx([1.0], abs=0.3)
