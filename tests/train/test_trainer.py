"""Trainer: the training loop as a user sees it, on the spiral data set.

History, early stopping, the regularization term, callbacks, divergence, the files written
to ``out_dir``, reproducibility, the progress bar and learning-rate schedules.
"""

import csv
import json
import math
import re
import sys

import numpy as np
import pytest
from torch_reference import Cases, assert_matches, torch

from chainrule import optim
from chainrule.data import Dataset, load_dataset
from chainrule.errors import ChainruleError
from chainrule.nn import MLP
from chainrule.optim import lr_scheduler
from chainrule.serialization import load
from chainrule.train import Callback, Trainer, TrainingDiverged

RECORD_KEYS = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"}


@pytest.fixture(scope="module")
def spiral():
    return load_dataset("spiral", seed=0)


def make_trainer(epochs=5, seed=0, lr=0.01, hidden=(32,), optimizer="adam", **options):
    model = MLP(2, list(hidden), 3, seed=seed)
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    options.setdefault("progress", False)
    return Trainer(model, opt, epochs=epochs, seed=seed, **options)


def weights(model):
    return {name: value.copy() for name, value in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----- the loop and its history ----------------------------------------------------------
def test_loss_decreases_and_history_has_one_record_per_epoch(spiral):
    trainer = make_trainer(epochs=30)
    summary = trainer.fit(spiral)
    history = trainer.history
    assert [r["epoch"] for r in history] == list(range(1, 31))
    for record in history:
        assert RECORD_KEYS <= record.keys()
        assert 0.0 <= record["train_accuracy"] <= 1.0 and 0.0 <= record["val_accuracy"] <= 1.0
        assert math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"])
        assert record["lr"] == pytest.approx(0.01)
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert history[-1]["train_accuracy"] > history[0]["train_accuracy"]
    assert summary["epochs"] == 30
    assert summary["final_loss"] == history[-1]["train_loss"]


def test_without_patience_the_last_weights_are_kept(spiral):
    trainer = make_trainer(epochs=8)
    summary = trainer.fit(spiral)
    # The last record was measured on the final weights; nothing was swapped in after it.
    assert summary["val_accuracy"] == trainer.history[-1]["val_accuracy"]
    assert summary["stopped_early"] is False


def test_early_stopping_restores_the_best_weights(spiral, tmp_path):
    patience = 3
    trainer = make_trainer(epochs=200, lr=0.05, patience=patience, out_dir=tmp_path)
    summary = trainer.fit(spiral)
    history = trainer.history
    val_acc = [r["val_accuracy"] for r in history]
    best_epoch = int(np.argmax(val_acc)) + 1  # the first epoch reaching the maximum
    assert summary["stopped_early"] is True
    assert len(history) < 200
    assert len(history) == best_epoch + patience
    assert summary["best_epoch"] == best_epoch
    # After fit the model holds the weights of the best epoch, not those of the last one.
    _, accuracy = trainer.evaluate(spiral.X_val, spiral.y_val)
    assert accuracy == max(val_acc)
    assert summary["val_accuracy"] == max(val_acc)
    assert max(val_acc) > val_acc[-1] or len(set(val_acc[best_epoch - 1:])) == 1
    best = load(tmp_path / "best.crk")
    assert best["epoch"] == best_epoch
    assert_same_weights(weights(trainer.model), best["model"])


def test_an_unknown_loss_or_a_bad_length_is_refused():
    with pytest.raises(ChainruleError, match="unknown loss"):
        make_trainer(loss="hinge2")
    with pytest.raises(ChainruleError, match="epochs"):
        make_trainer(epochs=0)
    with pytest.raises(ChainruleError, match="batch_size"):
        make_trainer(batch_size=-4)


# ----- the regularization term -----------------------------------------------------------
def test_reg_adds_the_l2_term_over_weights_but_not_biases(spiral):
    X, y = spiral.X_train[:64], spiral.y_train[:64]
    plain, regularized = make_trainer(), make_trainer(reg=0.1)
    assert_same_weights(weights(plain.model), weights(regularized.model))
    loss_plain, _ = plain.training_loss(X, y)
    loss_reg, _ = regularized.training_loss(X, y)
    state = weights(plain.model)
    squares = sum(float((w.astype(np.float64) ** 2).sum())
                  for name, w in state.items() if name.endswith("weight"))
    assert loss_reg.item() > loss_plain.item()
    assert loss_reg.item() - loss_plain.item() == pytest.approx(0.1 * squares, rel=1e-4)


def test_reg_shows_in_the_training_loss_of_the_first_epoch(spiral):
    plain, regularized = make_trainer(epochs=1), make_trainer(epochs=1, reg=0.05)
    plain.fit(spiral)
    regularized.fit(spiral)
    # Validation loss is the data loss only; the training loss carries lambda R(W).
    assert regularized.history[0]["train_loss"] > plain.history[0]["train_loss"] + 0.05


def test_reg_pulls_the_weights_towards_zero(spiral):
    plain, regularized = make_trainer(epochs=20), make_trainer(epochs=20, reg=0.01)
    plain.fit(spiral)
    regularized.fit(spiral)

    def norm(model):
        return sum(float((w ** 2).sum()) for n, w in weights(model).items() if "weight" in n)

    assert norm(regularized.model) < norm(plain.model)


# ----- callbacks --------------------------------------------------------------------------
class Recorder(Callback):
    def __init__(self):
        self.calls = []
        self.grads_present = []

    def on_train_begin(self, trainer):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, trainer, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_after_backward(self, trainer):
        self.calls.append(("after_backward",))
        grads = [p.grad for p in trainer.model.parameters()]
        self.grads_present.append(all(g is not None and np.isfinite(g).all() and g.any()
                                      for g in grads))

    def on_epoch_end(self, trainer, record):
        self.calls.append(("epoch_end", record["epoch"]))
        grad_norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in trainer.model.parameters()))
        record["grad_norm"] = grad_norm
        record["marker"] = 10 * record["epoch"]

    def on_train_end(self, trainer):
        self.calls.append(("train_end",))


def test_callbacks_are_called_in_order_with_gradients_ready(spiral, tmp_path):
    recorder = Recorder()
    trainer = make_trainer(epochs=3, batch_size=100, callbacks=[recorder], out_dir=tmp_path)
    trainer.fit(spiral)
    steps = 3  # 300 examples in batches of 100
    expected = [("train_begin",)]
    for epoch in (1, 2, 3):
        expected += [("epoch_begin", epoch)] + [("after_backward",)] * steps
        expected += [("epoch_end", epoch)]
    expected += [("train_end",)]
    assert recorder.calls == expected
    assert len(recorder.grads_present) == 9 and all(recorder.grads_present)


def test_on_after_backward_runs_before_the_step():
    class Snapshot(Callback):
        def on_after_backward(self, trainer):
            self.before = weights(trainer.model)

    snap = Snapshot()
    data = load_dataset("spiral", seed=1)
    data = Dataset("small", data.X_train[:32], data.y_train[:32], data.X_val, data.y_val,
                   None, None, 3)
    trainer = make_trainer(epochs=1, batch_size=32, callbacks=[snap])
    initial = weights(trainer.model)
    trainer.fit(data)
    assert_same_weights(snap.before, initial)  # the only step comes after the hook


def test_keys_added_by_on_epoch_end_reach_history_and_history_csv(spiral, tmp_path):
    trainer = make_trainer(epochs=4, callbacks=[Recorder()], out_dir=tmp_path)
    trainer.fit(spiral)
    assert [r["marker"] for r in trainer.history] == [10, 20, 30, 40]
    rows = read_csv(tmp_path / "history.csv")
    assert len(rows) == 4
    assert [int(r["marker"]) for r in rows] == [10, 20, 30, 40]
    assert [float(r["grad_norm"]) for r in rows] == [r["grad_norm"] for r in trainer.history]


# ----- divergence -------------------------------------------------------------------------
def blow_up_at(model, epoch, step, steps_per_epoch):
    """Make the model's training-mode output infinite at (epoch, step), 1-based."""
    target = (epoch - 1) * steps_per_epoch + step
    calls = {"n": 0}

    def hook(module, inputs, output):
        if not module.training:
            return None
        calls["n"] += 1
        return output * float("inf") if calls["n"] == target else None

    return model.register_forward_hook(hook)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on inf/nan
def test_an_infinite_loss_raises_training_diverged_naming_epoch_and_step(spiral, tmp_path):
    ends = []

    class KeepWeights(Callback):
        def on_epoch_end(self, trainer, record):
            ends.append(weights(trainer.model))

    trainer = make_trainer(epochs=5, out_dir=tmp_path, callbacks=[KeepWeights()])
    blow_up_at(trainer.model, epoch=2, step=3, steps_per_epoch=5)  # 300 / 64 -> 5 steps
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(spiral)
    message = str(info.value)
    assert re.search(r"\bepoch 2\b", message) and re.search(r"\bstep 3\b", message), message
    assert "checkpoint" in message
    assert isinstance(info.value, ChainruleError)
    # The last good checkpoint (epoch 1) is intact, loadable, and holds epoch 1's weights.
    state = load(tmp_path / "checkpoint.crk")
    assert state["epoch"] == 1
    assert len(ends) == 1
    assert_same_weights(state["model"], ends[0])
    assert all(np.isfinite(w).all() for w in state["model"].values())
    assert not list(tmp_path.glob(".*.tmp"))
    # ... and a fresh trainer resumes from it to the end.
    again = make_trainer(epochs=5, out_dir=tmp_path)
    summary = again.fit(spiral, resume=True)
    assert summary["epochs"] == 5 and math.isfinite(summary["final_loss"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on inf/nan
def test_divergence_in_the_first_epoch_points_to_no_missing_checkpoint(spiral, tmp_path):
    trainer = make_trainer(epochs=3, out_dir=tmp_path)
    blow_up_at(trainer.model, epoch=1, step=2, steps_per_epoch=5)
    with pytest.raises(TrainingDiverged, match=r"epoch 1\b.*step 2\b") as info:
        trainer.fit(spiral)
    assert not (tmp_path / "checkpoint.crk").exists()
    assert "checkpoint" not in str(info.value), str(info.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on inf/nan
def test_a_nan_loss_without_out_dir_also_raises(spiral):
    trainer = make_trainer(epochs=3)
    handle = blow_up_at(trainer.model, epoch=1, step=1, steps_per_epoch=5)
    with pytest.raises(TrainingDiverged, match=r"epoch 1\b.*step 1\b"):
        trainer.fit(spiral)
    handle.remove()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on inf/nan
def test_a_huge_learning_rate_diverges_instead_of_training_on_nan(spiral):
    # A linear model with an absurd step: the scores overflow float32 within a few steps.
    model = MLP(2, [], 3, seed=0)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1e38), epochs=20,
                      progress=False)
    with pytest.raises(TrainingDiverged, match=r"epoch \d+, step \d+"):
        trainer.fit(spiral)


# ----- files in out_dir -------------------------------------------------------------------
def test_out_dir_holds_checkpoints_history_and_summary(spiral, tmp_path):
    out = tmp_path / "run"  # created by the trainer
    config = {"note": "spiral test", "hidden": [32]}
    trainer = make_trainer(epochs=6, out_dir=out, config=config)
    summary = trainer.fit(spiral)
    for name in ("checkpoint.crk", "best.crk", "history.csv", "summary.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))

    with open(out / "history.csv", newline="") as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    assert RECORD_KEYS <= set(header)
    assert len(lines) == 1 + 6
    rows = read_csv(out / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert [float(r["train_loss"]) for r in rows] == [r["train_loss"] for r in trainer.history]

    saved = json.loads((out / "summary.json").read_text())
    for key in ("train_accuracy", "val_accuracy", "final_loss", "epochs", "seconds", "config"):
        assert key in saved, key
    assert saved["epochs"] == 6
    assert saved["config"] == config
    assert saved["final_loss"] == trainer.history[-1]["train_loss"]
    assert saved["train_accuracy"] == summary["train_accuracy"]
    assert saved["seconds"] >= 0

    state = load(out / "checkpoint.crk")
    assert state["epoch"] == 6
    assert_same_weights(state["model"], weights(trainer.model))


def test_summary_reports_the_test_split_when_there_is_one(spiral):
    data = Dataset("spiral+test", spiral.X_train, spiral.y_train, spiral.X_val[:150],
                   spiral.y_val[:150], spiral.X_val[150:], spiral.y_val[150:], 3)
    summary = make_trainer(epochs=2).fit(data)
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and math.isfinite(summary["test_loss"])


# ----- reproducibility and the progress bar -----------------------------------------------
def test_the_same_seed_gives_bitwise_identical_histories(spiral):
    first, second = make_trainer(epochs=6, seed=4), make_trainer(epochs=6, seed=4)
    first.fit(spiral)
    second.fit(spiral)
    assert without_seconds(first.history) == without_seconds(second.history)
    assert_same_weights(weights(first.model), weights(second.model))
    other = make_trainer(epochs=6, seed=5)
    other.fit(spiral)
    assert without_seconds(other.history) != without_seconds(first.history)


def test_no_progress_output_when_asked_for_none(spiral, capsys):
    make_trainer(epochs=3, progress=False).fit(spiral)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_one_line_per_epoch_when_stderr_is_not_a_terminal(spiral, capsys):
    make_trainer(epochs=3, progress=None).fit(spiral)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 3
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("val accuracy" in line and "\r" not in line for line in lines)


def test_progress_true_draws_a_bar(spiral, capsys):
    pytest.importorskip("tqdm")
    make_trainer(epochs=2, progress=True).fit(spiral)
    assert "epoch 2/2" in capsys.readouterr().err


# ----- learning-rate schedules ------------------------------------------------------------
def test_step_lr_halves_the_rate_at_the_right_epochs(spiral):
    trainer = make_trainer(epochs=7, lr=0.04, optimizer="sgd")
    trainer.scheduler = lr_scheduler.StepLR(trainer.optimizer, step_size=2, gamma=0.5)
    trainer.fit(spiral)
    lrs = [r["lr"] for r in trainer.history]
    assert lrs == pytest.approx([0.04, 0.04, 0.02, 0.02, 0.01, 0.01, 0.005])


def test_reduce_lr_on_plateau_is_given_the_validation_loss(spiral):
    seen = []

    class Watching(lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    trainer = make_trainer(epochs=12, lr=0.1, optimizer="sgd")
    trainer.scheduler = Watching(trainer.optimizer, factor=0.5, patience=0)
    trainer.fit(spiral)
    assert seen == [r["val_loss"] for r in trainer.history]
    lrs = [r["lr"] for r in trainer.history]
    # With patience 0 every epoch whose validation loss is no better halves the next rate.
    best, halvings = math.inf, 0
    for i, loss in enumerate(seen[:-1]):
        worse = not loss < best * (1 - 1e-4)  # the default relative threshold
        best = best if worse else loss
        halvings += worse
        assert lrs[i + 1] == pytest.approx(lrs[i] / 2 if worse else lrs[i])
    assert halvings > 0


WARMUP_RUN = {"epochs": 8, "warmup": 2, "lr": 0.05}
CASES = Cases("train")


def warmup_then_cosine(schedulers, opt):
    """A linear warm-up then cosine annealing, from ``lr_scheduler`` or torch's."""
    epochs, warmup = WARMUP_RUN["epochs"], WARMUP_RUN["warmup"]
    return schedulers.SequentialLR(
        opt, [schedulers.LinearLR(opt, start_factor=0.1, total_iters=warmup),
              schedulers.CosineAnnealingLR(opt, T_max=epochs - warmup)], milestones=[warmup])


@CASES.case()
def cosine_with_warmup():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=WARMUP_RUN["lr"])
    scheduler = warmup_then_cosine(torch.optim.lr_scheduler, opt)
    lrs = []
    for _ in range(WARMUP_RUN["epochs"]):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return {"lr": lrs}


def test_cosine_with_warmup_matches_pytorch(spiral):
    trainer = make_trainer(epochs=WARMUP_RUN["epochs"], lr=WARMUP_RUN["lr"], optimizer="sgd")
    trainer.scheduler = warmup_then_cosine(lr_scheduler, trainer.optimizer)
    trainer.fit(spiral)
    assert_matches(CASES.expected(cosine_with_warmup),
                   {"lr": [r["lr"] for r in trainer.history]}, rtol=1e-6, atol=0)


# ----- the SVM loss -----------------------------------------------------------------------
def test_svm_loss_is_the_multiclass_hinge_and_trains(spiral):
    trainer = make_trainer(epochs=100, loss="svm")
    X, y = spiral.X_val, spiral.y_val
    scores = trainer.model(X).data.astype(np.float64)
    margins = np.maximum(0.0, scores - scores[np.arange(len(y)), y][:, None] + 1.0)
    margins[np.arange(len(y)), y] = 0.0
    loss, _ = trainer.evaluate(X, y)
    assert loss == pytest.approx(margins.sum(axis=1).mean(), rel=1e-5)

    summary = trainer.fit(spiral)
    assert trainer.history[-1]["train_loss"] < 0.3 * trainer.history[0]["train_loss"]
    assert summary["train_accuracy"] >= 0.95


def test_a_notebook_gets_the_progress_bar_not_log_lines(monkeypatch):
    import types

    from chainrule.train import _default_progress

    assert _default_progress() == "log"  # pytest's stderr is not a terminal
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert _default_progress() == "log"  # ipykernel imported (by a test tool) is no notebook

    class ZMQInteractiveShell:  # the shell class a Jupyter kernel runs
        pass

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    assert _default_progress() is True  # tqdm.auto then draws a notebook widget
