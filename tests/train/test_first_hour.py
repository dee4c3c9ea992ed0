"""What a newcomer meets in the first hour: ``chainrule train`` / ``evaluate`` as typed
from the README, and ``make demo``'s last words.

Every test runs in its own temporary folder (conftest.py), so ``runs/`` lands there.
"""

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import cli
from chainrule.experiment import RunConfig
from chainrule.serialization import load

PNG = b"\x89PNG\r\n\x1a\n"


def main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_history(out):
    return [json.loads(json.dumps(r)) for r in cr.load_run(out).history]


# ----- evaluate evaluates the file it is given -------------------------------------------
@pytest.fixture(scope="module")
def early_best_run(tmp_path_factory):
    """A spiral run whose best validation accuracy came before its last epoch."""
    out = tmp_path_factory.mktemp("best") / "run"
    assert cli.main(["train", "--dataset", "spiral", "--epochs", "30", "--lr", "0.1",
                     "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_epoch"] < summary["epochs"]  # otherwise the test shows nothing
    return out, summary


def test_evaluate_best_crk_evaluates_the_best_weights(early_best_run, capsys):
    out, summary = early_best_run
    history = cr.load_run(out).history
    best, last = history[summary["best_epoch"] - 1], history[-1]
    assert best["val_accuracy"] != last["val_accuracy"]
    code, printed, err = main(capsys, "evaluate", "--checkpoint", out / "best.crk")
    assert code == 0, err
    assert json.loads(printed)["val"]["accuracy"] == pytest.approx(best["val_accuracy"])
    code, printed, _ = main(capsys, "evaluate", "--checkpoint", out / "model.crk")
    assert json.loads(printed)["val"]["accuracy"] == pytest.approx(last["val_accuracy"])
    code, by_folder, _ = main(capsys, "evaluate", "--checkpoint", out)
    assert json.loads(by_folder) == json.loads(printed)  # a folder means its model.crk


@pytest.mark.parametrize("name", ["history.csv", "summary.json", "curves.png"])
def test_evaluate_refuses_a_file_that_is_not_a_checkpoint(early_best_run, capsys, name):
    out, _ = early_best_run
    code, printed, err = main(capsys, "evaluate", "--checkpoint", out / name)
    assert code == 2 and printed == ""
    assert err.count("\n") == 1 and name in err and "checkpoint" in err


def test_evaluate_a_folder_without_model_crk_names_the_files_it_has(tmp_path, capsys):
    (tmp_path / "killed").mkdir()
    cr.save({"epoch": 1}, tmp_path / "killed" / "checkpoint.crk")
    code, _, err = main(capsys, "evaluate", "--checkpoint", tmp_path / "killed")
    assert code == 2 and err.count("\n") == 1
    assert "model.crk" in err and "checkpoint.crk" in err


# ----- where a run goes ----------------------------------------------------------------------
def test_train_without_out_writes_a_new_folder_under_runs_and_says_so(capsys):
    code, first, _ = main(capsys, "train", "--dataset", "xor", "--epochs", "2", "--quiet")
    assert code == 0
    code, second, _ = main(capsys, "train", "--dataset", "xor", "--epochs", "2", "--quiet")
    assert code == 0
    assert first.strip().endswith("results in runs/xor-1/")
    assert second.strip().endswith("results in runs/xor-2/")
    for folder in ("runs/xor-1", "runs/xor-2"):
        assert (Path(folder) / "model.crk").is_file() and (Path(folder) / "summary.json").is_file()


def test_reusing_an_out_folder_without_resume_is_refused_and_changes_nothing(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(capsys, "train", "--dataset", "spiral", "--epochs", "2", "--out", out,
                "--quiet")[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = main(capsys, "train", "--dataset", "moons", "--epochs", "2", "--out", out,
                        "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert "--resume" in err and "already holds a run" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert json.loads((out / "summary.json").read_text())["config"]["dataset"] == "spiral"


# ----- learning rates and --help --------------------------------------------------------------
def test_each_optimizer_has_its_own_default_learning_rate():
    from chainrule.experiment import OPTIMIZERS

    rates = {name: RunConfig(dataset="digits", optimizer=name).resolved().lr
             for name in OPTIMIZERS}
    assert rates["sgd"] == 0.1 and rates["momentum"] == 0.01 and rates["adam"] == 1e-3
    assert RunConfig(dataset="spiral", optimizer="sgd").resolved().lr == 1.0


def test_plain_sgd_with_its_default_rate_learns_digits(capsys, tmp_path):
    pytest.importorskip("sklearn")
    code, _, err = main(capsys, "train", "--dataset", "digits", "--optimizer", "sgd",
                        "--out", tmp_path / "sgd", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "sgd" / "summary.json").read_text())["test_accuracy"] > 0.95


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = re.findall(r"^  (--[a-z-]+)", capsys.readouterr().out, flags=re.M)
    parser = cli.make_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        if action.option_strings[0] in ("-h", "--resume", "--quiet", "--diagnose"):
            continue
        help_text = train.formatter_class("x")._get_help_string(action)
        assert "default" in help_text, action.option_strings[0]
    assert "sgd 0.1" in text and "adam 0.001" in text
    assert options == [] or all(o.startswith("--") for o in options)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"chainrule {cr.__version__}"


# ----- extending a finished run ------------------------------------------------------------
def weights(out):
    return load(Path(out) / "model.crk")["model"]


def without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("schedule", ["none", "step", "exponential"])
def test_resume_with_more_epochs_equals_one_uninterrupted_run(capsys, tmp_path, schedule):
    common = ["--dataset", "spiral", "--hidden", "32", "--dropout", "0.1", "--quiet",
              "--lr-schedule", schedule]
    assert main(capsys, "train", *common, "--epochs", "4", "--out", tmp_path / "a")[0] == 0
    code, _, err = main(capsys, "train", "--resume", "--epochs", "8", "--out", tmp_path / "a",
                        "--quiet")
    assert code == 0, err
    whole = ["--epochs", "8"] + ([] if schedule == "none" else ["--schedule-epochs", "4"])
    assert main(capsys, "train", *common, *whole, "--out", tmp_path / "b")[0] == 0
    extended, uninterrupted = read_history(tmp_path / "a"), read_history(tmp_path / "b")
    assert [row["epoch"] for row in extended] == list(range(1, 9))
    assert without_seconds(extended) == without_seconds(uninterrupted)
    for name, array in weights(tmp_path / "b").items():
        assert np.array_equal(weights(tmp_path / "a")[name], array), name


def test_a_finished_cosine_schedule_cannot_be_extended_and_says_why(capsys, tmp_path):
    assert main(capsys, "train", "--dataset", "xor", "--epochs", "3", "--lr-schedule",
                "cosine", "--out", tmp_path / "c", "--quiet")[0] == 0
    code, _, err = main(capsys, "train", "--resume", "--epochs", "6", "--out", tmp_path / "c",
                        "--quiet")
    assert code == 2 and err.count("\n") == 1 and "cosine" in err and "--epochs 6" in err


# ----- a diverged run still draws ---------------------------------------------------------
def test_a_diverged_run_draws_its_curves_and_diagnostics(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "diverged"
    code, _, err = main(capsys, "train", "--dataset", "spiral", "--optimizer", "sgd", "--lr",
                        "1e4", "--out", out, "--quiet", "--diagnose")
    assert code == 2 and err.count("\n") == 1 and "diverged" in err
    for name in ("curves.png", "diagnostics.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
        assert name in err


# ----- options that would be ignored -------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--momentum", "0.5"], "--momentum is ignored"),
    (["--data-dir", "/nowhere"], "--data-dir is ignored"),
    (["--hidden", "none", "--activation", "tanh"], "--activation is ignored"),
])
def test_an_option_the_run_would_not_use_gets_a_warning(capsys, argv, words):
    code, _, err = main(capsys, "train", "--dataset", "xor", "--epochs", "1", "--quiet", *argv)
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("chainrule: warning:") and words in err


def test_evaluate_warns_that_a_generated_set_reads_no_data_dir(early_best_run, capsys):
    out, _ = early_best_run
    code, _, err = main(capsys, "evaluate", "--checkpoint", out, "--data-dir", "/nowhere")
    assert code == 0 and err.count("\n") == 1 and "--data-dir is ignored" in err


def test_unused_values_in_a_formula_get_a_warning(capsys, tmp_path):
    code, _, err = main(capsys, "explain", "x * y", "--values", "x=1,y=2,z=3")
    assert code == 0 and "z is not in the formula" in err and err.count("\n") == 1


# ----- no false alarm from --diagnose on the README's commands ------------------------------
README_RUNS = {
    "spiral": ["--dataset", "spiral", "--hidden", "100", "--activation", "relu", "--loss",
               "softmax", "--optimizer", "adam", "--lr", "1e-2", "--weight-decay", "1e-4",
               "--epochs", "200", "--batch-size", "64", "--lr-schedule", "cosine"],
    "digits": ["--dataset", "digits"],
}


@pytest.mark.parametrize("name", list(README_RUNS))
def test_diagnose_raises_no_false_alarm_on_the_readmes_runs(capsys, name):
    if name == "digits":
        pytest.importorskip("sklearn")
    code, out, err = main(capsys, "train", *README_RUNS[name], "--quiet", "--diagnose")
    assert code == 0, err
    assert "warning" not in out and "warning" not in err


# ----- make demo and the packaging -----------------------------------------------------
def test_the_demo_ends_with_how_to_run_chainrule(capsys, tmp_path):
    pytest.importorskip("sklearn")
    from chainrule.demo import run_demo

    run_demo(tmp_path / "demo", progress=False)
    run_demo(tmp_path / "demo", progress=False)  # a second demo replaces the first, and says so
    out = capsys.readouterr().out
    tail = out.strip().splitlines()[-6:]
    assert any("bin/chainrule train" in line for line in tail)
    assert any("source .venv/bin/activate" in line for line in tail)
    assert "replacing the demo's earlier run" in out


def test_the_package_metadata_uses_an_spdx_license():
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    assert "setuptools>=77" in project["build-system"]["requires"]
