"""``Trainer``: the one place that owns the training loop.

Each epoch: minibatches in a fresh order; forward, loss (plus the regularization term
lambda R(W)), backward, optimizer step; then validation loss and accuracy, a scheduler
step, early stopping on validation accuracy, and (with ``out_dir``) a checkpoint. The
checkpoint holds everything the next epoch depends on (weights, optimizer and scheduler
state, the data order's and dropout's random generators, the history), so a run killed
at any moment and resumed ends with exactly the numbers of an uninterrupted run. It is
written after every epoch, or (``checkpoint_every``) every so many seconds: a killed run
then repeats at most that much training, and still ends with the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from . import compiler
from ._io import atomic_write_text, folder_lock, json_default, remove_temporary_files
from .data import DataLoader
from .engine import no_grad
from .errors import ArgumentError, ChainruleError, CheckpointError, TrainingDiverged
from .nn import functional as F
from .optim.lr_scheduler import ReduceLROnPlateau
from .serialization import load, save
from .state_check import check_history, check_like, check_range, check_settings


def squared_error(scores, targets):
    """Mean squared error of a regression: one real output per row, scores (N, 1), targets
    (N,) (TensorFlow Playground's regression loss, without its factor 1/2)."""
    return F.mse_loss(scores.reshape(-1), targets)


LOSSES = {"softmax": F.cross_entropy, "svm": F.hinge_loss, "mse": squared_error}
REGRESSION_LOSSES = ("mse",)  # a real-valued target: no accuracy; the loss decides
CHECKPOINT, BEST = "checkpoint.crk", "best.crk"
# What may change during a run in an optimizer's or scheduler's state (all else is set
# by the run's options and must match them on resume).
_CHANGING = frozenset({"state", "lr", "last_epoch", "_step_count", "_is_initial", "_last_lr",
                       "best", "cooldown_counter", "num_bad_epochs"})


class Callback:
    """Hooks into the training loop; override the ones you need.

    ``on_epoch_end`` may add entries to ``record``, which goes into the history.
    """

    def on_train_begin(self, trainer): ...

    def on_epoch_begin(self, trainer, epoch: int): ...

    def on_after_backward(self, trainer): ...  # gradients are ready; the step comes next

    def on_step_end(self, trainer): ...  # the optimizer has updated the parameters

    def on_epoch_end(self, trainer, record: dict): ...

    def on_train_end(self, trainer): ...

    def state_dict(self):
        """What this callback must keep across a resumed run (saved in the checkpoint
        under the class's name), or None for nothing."""
        return None

    def load_state_dict(self, state): ...


class Trainer:
    """Train a classifier on a ``chainrule.data.Dataset``.

    Args:
        model: a Module mapping features (N, D) to class scores (N, C).
        optimizer: an optimizer over ``model.parameters()``.
        loss: "softmax" (cross-entropy), "svm" (multiclass hinge), "mse" (regression:
            one output, real targets, no accuracy) or a callable
            ``loss(scores, labels) -> Tensor``.
        scheduler: a learning-rate scheduler, stepped once per epoch (ReduceLROnPlateau
            with the validation loss).
        reg: lambda of the L2 penalty lambda * sum(W^2) over weights (not biases).
        l1: lambda of the L1 penalty lambda * sum(|W|) over weights (not biases).
        epochs, batch_size: the length of training and the minibatch size.
        patience: stop after this many epochs without a better validation accuracy (loss,
            for a regression) and
            restore the best weights; None trains every epoch and keeps the last weights.
        seed: the seed of the minibatch order.
        out_dir: where checkpoints, ``history.csv`` and ``summary.json`` go (optional).
        progress: True for a progress bar (``tqdm.auto``: a widget in a notebook), "log"
            for one line per epoch on stderr, False for nothing; the default is a bar in a
            terminal or a notebook and one line per epoch otherwise (a log file, a pipe).
        callbacks: ``Callback`` objects.
        config: anything JSON-serialisable to store in checkpoints and the summary.
        checkpoint_every: with ``out_dir``, None writes a checkpoint after every epoch; a
            number of seconds writes one after the first epoch that ends at least that
            long after the last checkpoint (and after the last epoch), for networks so
            small that writing a checkpoint costs more than an epoch.
        compile: run each training step compiled (``cr.compile``): recorded once per
            batch shape, then replayed with the same numbers, faster. Steps run eagerly
            when a callback overrides ``on_after_backward`` (it must see the gradients
            before the update) or ``CHAINRULE_COMPILE=0`` is set.
    """

    def __init__(self, model, optimizer, loss="softmax", scheduler=None, reg=0.0, epochs=10,
                 batch_size=64, patience=None, seed=0, out_dir=None, progress=None,
                 callbacks=(), config=None, compile=True, checkpoint_every=None, l1=0.0):
        self.regression = isinstance(loss, str) and loss in REGRESSION_LOSSES
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ArgumentError(f"Trainer: unknown loss {loss!r}; choose one of "
                                     + ", ".join(LOSSES))
            loss = LOSSES[loss]
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(value, int) or value <= 0:
                raise ArgumentError(f"Trainer: {name} must be a positive integer, got {value!r}")
        self.model, self.optimizer, self.loss_fn, self.scheduler = model, optimizer, loss, scheduler
        self.reg, self.epochs, self.batch_size, self.patience = reg, epochs, batch_size, patience
        self.seed, self.callbacks, self.config = seed, list(callbacks), config or {}
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = _default_progress() if progress is None else progress
        self.history: list[dict] = []
        self.l1 = l1
        self.best = ({"val_loss": math.inf, "epoch": 0} if self.regression
                     else {"val_accuracy": -1.0, "epoch": 0})
        self._best_state = None
        self._bad_epochs, self._seconds = 0, 0.0
        self.compile = compile
        self._compiled_step = None
        if checkpoint_every is not None and not (isinstance(checkpoint_every, int | float)
                                                 and 0 <= checkpoint_every < math.inf):
            raise ArgumentError("Trainer: checkpoint_every must be None or a number of "
                                f"seconds >= 0, got {checkpoint_every!r}")
        self.checkpoint_every = checkpoint_every

    def _step_function(self):
        """The compiled training step, or None when steps run eagerly."""
        watches_gradients = any(type(cb).on_after_backward is not Callback.on_after_backward
                                for cb in self.callbacks)
        hooked = any(m._forward_hooks for m in self.model.modules())  # Python at every call
        if not self.compile or watches_gradients or hooked or not compiler.enabled():
            return None
        if self._compiled_step is None:
            self._compiled_step = compiler.compile(self._training_step)
        return self._compiled_step

    def _training_step(self, X, y):
        """Forward, loss, backward and update on one minibatch: (loss, class scores)."""
        loss, scores = self.training_loss(X, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss, scores

    # ----- one step and one epoch ---------------------------------------------------------
    def training_loss(self, X, y):
        """Forward pass and loss on one minibatch: (loss Tensor, class scores array)."""
        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        if self.reg:
            loss = loss + F.l2_penalty(self.model, self.reg)
        if self.l1:
            loss = loss + F.l1_penalty(self.model, self.l1)
        return loss, scores.data

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # a NaN loss is reported
    def _train_epoch(self, loader, epoch, bar):
        self.model.train()
        compiled = self._step_function()
        total_loss, correct, seen = 0.0, 0, 0
        for step, (X, y) in enumerate(loader, 1):
            if compiled is not None:  # one call: forward, backward and update
                loss, scores = compiled(X, y)
                value = loss.item()
                self._check_finite(value, epoch, step, total_loss, correct, seen)
            else:
                loss, scores = self.training_loss(X, y)
                value = loss.item()
                self._check_finite(value, epoch, step, total_loss, correct, seen)
                self.optimizer.zero_grad()
                loss.backward()
                for cb in self.callbacks:
                    cb.on_after_backward(self)
                self.optimizer.step()
            for cb in self.callbacks:
                cb.on_step_end(self)
            total_loss += value * len(y)
            if not self.regression:
                correct += int((scores.argmax(axis=1) == y).sum())
            seen += len(y)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == len(loader):
                    shown = {} if self.regression else {"acc": f"{correct / seen:.3f}"}
                    bar.set_postfix(loss=f"{total_loss / seen:.4f}", **shown, refresh=False)
        return total_loss / seen, None if self.regression else correct / seen

    def _check_finite(self, value, epoch, step, total_loss, correct, seen):
        """Stop with TrainingDiverged when the loss is NaN or infinite, keeping in
        ``diverged_at`` what the epoch had reached, so that its pictures can be drawn."""
        if not math.isfinite(value):
            self.diverged_at = {"epoch": epoch, "step": step, "lr": self.current_lr(),
                                "train_loss": total_loss / seen if seen else None,
                                "train_accuracy": correct / seen if seen else None}
            raise TrainingDiverged(self._diverged(f"at epoch {epoch}, step {step}: the "
                                                  f"loss is {value}"))

    def _diverged(self, what: str) -> str:
        last_good = self.out_dir / CHECKPOINT if self.out_dir else None
        where = (f" the last good checkpoint is in {last_good};"
                 if last_good is not None and last_good.exists() else "")
        return f"training diverged {what};{where} try a smaller learning rate"

    def check_finite(self, when: str):
        """Raise ``TrainingDiverged`` if a parameter holds NaN or infinity: such a model
        is never saved as a checkpoint or as the trained model."""
        for name, p in self.model.named_parameters():
            if not np.isfinite(p.data).all():
                raise TrainingDiverged(self._diverged(f"{when}: parameter {name} is no "
                                                      "longer finite"))

    @no_grad()
    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # reported, not warned
    def evaluate(self, X, y, batch_size=2048):
        """(mean loss, accuracy) of the model in evaluation mode on (X, y); the accuracy is
        None for a regression."""
        was_training = self.model.training
        self.model.eval()
        total_loss, correct = 0.0, 0
        for start in range(0, len(X), batch_size):
            scores = self.model(X[start:start + batch_size])
            labels = y[start:start + batch_size]
            total_loss += self.loss_fn(scores, labels).item() * len(labels)
            if not self.regression:
                correct += int((scores.data.argmax(axis=1) == labels).sum())
        self.model.train(was_training)
        return total_loss / len(X), None if self.regression else correct / len(X)

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # ----- the loop -------------------------------------------------------------------------
    def fit(self, data, resume=False) -> dict:
        """Train on ``data`` (a Dataset with train and validation splits); returns the
        summary. With ``resume``, continue from the checkpoint in ``out_dir``."""
        loader = DataLoader(data.X_train, data.y_train, batch_size=self.batch_size,
                            shuffle=True, seed=self.seed)
        self.loader = loader  # callbacks may read it (a playground resizes its batches)
        with self.folder_lock():
            return self._fit(data, loader, resume)

    def folder_lock(self):
        """The lock on ``out_dir`` that keeps a second run out of it (nothing without
        ``out_dir``); fit takes it, and so may a caller that writes more files there."""
        return nullcontext() if self.out_dir is None else folder_lock(self.out_dir)

    def _fit(self, data, loader, resume):
        if self.out_dir is not None:
            remove_temporary_files(self.out_dir)  # left by a run killed while writing
        first_epoch = self._restore(loader) + 1 if resume else 1
        self._history_on_disk = 0  # rows of history.csv known to be on disk
        self._best_on_disk = self.best["epoch"]  # the epoch whose weights best.crk holds
        self._last_checkpoint = time.perf_counter()
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = self._progress_bar(len(loader), first_epoch)
        stopped_early = self.patience is not None and self._bad_epochs >= self.patience
        try:
            for epoch in range(first_epoch, self.epochs + 1):
                if stopped_early:
                    break
                started = time.perf_counter()
                for cb in self.callbacks:
                    cb.on_epoch_begin(self, epoch)
                if bar is not None:
                    bar.set_description(f"epoch {epoch}/{self.epochs}")
                lr = self.current_lr()
                try:
                    train_loss, train_acc = self._train_epoch(loader, epoch, bar)
                except TrainingDiverged:  # callbacks still report what they saw
                    for cb in self.callbacks:
                        cb.on_train_end(self)
                    raise
                self.check_finite(f"at the end of epoch {epoch}")
                val_loss, val_acc = self.evaluate(data.X_val, data.y_val)
                if not math.isfinite(val_loss):
                    raise TrainingDiverged(self._diverged(f"at epoch {epoch}: the validation "
                                                          f"loss is {val_loss}"))
                self._step_scheduler(val_loss)
                self._seconds += time.perf_counter() - started
                record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                          "val_loss": val_loss, "val_accuracy": val_acc, "lr": lr,
                          "seconds": self._seconds}
                improved = (val_loss < self.best["val_loss"] if self.regression
                            else val_acc > self.best["val_accuracy"])
                if improved:
                    self.best = ({"val_loss": val_loss, "epoch": epoch} if self.regression
                                 else {"val_accuracy": val_acc, "epoch": epoch})
                    self._best_state = self.model.state_dict()
                self._bad_epochs = 0 if improved else self._bad_epochs + 1
                for cb in self.callbacks:
                    cb.on_epoch_end(self, record)
                self.history.append(record)
                stopped_early = self.patience is not None and self._bad_epochs >= self.patience
                if self.out_dir is not None and self._checkpoint_due(
                        epoch == self.epochs or stopped_early):
                    writing = time.perf_counter()
                    self._checkpoint(epoch, loader)
                    self._last_checkpoint = time.perf_counter()
                    self._seconds += self._last_checkpoint - writing  # wall time, all told
                if bar is not None:
                    bar.set_postfix(loss=f"{train_loss:.4f}", **(
                        {"val_loss": f"{val_loss:.4f}"} if self.regression else
                        {"acc": f"{train_acc:.3f}", "val_acc": f"{val_acc:.3f}"}))
                elif self.progress == "log":
                    scores = (f"val loss {val_loss:.4f}" if self.regression else
                              f"accuracy {train_acc:.1%}, val accuracy {val_acc:.1%}")
                    print(f"epoch {epoch}/{self.epochs}: loss {train_loss:.4f}, {scores}, "
                          f"lr {lr:.3g} "
                          f"({self._seconds:.1f} s)", file=sys.stderr, flush=True)
        finally:
            if bar is not None:
                bar.close()
        if self.patience is not None and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        for cb in self.callbacks:
            cb.on_train_end(self)
        summary = self._summary(data, stopped_early)
        if self.out_dir is not None:
            self._write_reports(summary)
        return summary

    def _step_scheduler(self, val_loss):
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        else:
            self.scheduler.step()

    def _progress_bar(self, steps_per_epoch, first_epoch):
        if not self.progress or self.progress == "log":
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # the bar is optional (chainrule[progress]): log lines instead
            self.progress = "log"
            return None
        total = steps_per_epoch * self.epochs
        return tqdm(total=total, initial=steps_per_epoch * (first_epoch - 1), unit="step",
                    dynamic_ncols=True, leave=True)

    def _summary(self, data, stopped_early) -> dict:
        train_loss, train_acc = self.evaluate(data.X_train, data.y_train)
        val_loss, val_acc = self.evaluate(data.X_val, data.y_val)
        summary = {"train_accuracy": train_acc, "val_accuracy": val_acc,
                   "train_loss": train_loss, "val_loss": val_loss}
        if data.X_test is not None:
            summary["test_loss"], summary["test_accuracy"] = self.evaluate(data.X_test,
                                                                           data.y_test)
        last = self.history[-1] if self.history else {}
        summary.update(final_loss=last.get("train_loss"), epochs=len(self.history),
                       best_epoch=self.best["epoch"], stopped_early=stopped_early,
                       seconds=round(self._seconds, 3), config=self.config)
        return summary

    # ----- checkpoints ----------------------------------------------------------------------
    def _state(self, epoch, loader) -> dict:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "loader": loader.state_dict(),
            "extra_state": self.model.extra_states(),  # e.g. dropout's generators
            "history": json.dumps(self.history),  # one string: cheap to store each epoch
            "best": self.best,
            "bad_epochs": self._bad_epochs,
            "seconds": self._seconds,
            "config": self.config,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks
                          if cb.state_dict() is not None},
        }

    def _checkpoint_due(self, last_epoch: bool) -> bool:
        if self.checkpoint_every is None or last_epoch:
            return True
        return time.perf_counter() - self._last_checkpoint >= self.checkpoint_every

    def _checkpoint(self, epoch, loader):
        self.check_finite(f"at the end of epoch {epoch}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        best = self.best["epoch"]
        if best != self._best_on_disk:  # the best weights first, as the checkpoint names them
            save({"epoch": best, "model": self._best_state, "config": self.config},
                 self.out_dir / BEST)
            self._best_on_disk = best
        save(self._state(epoch, loader), self.out_dir / CHECKPOINT)
        self._write_history()

    def _restore(self, loader) -> int:
        """Load the checkpoint in ``out_dir``; returns the last finished epoch. The whole
        checkpoint is checked against what this trainer saves before anything is
        restored, so a damaged or edited one is one ``CheckpointError``."""
        if self.out_dir is None:
            raise ChainruleError("resume needs the output directory of the run (out_dir)")
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            raise CheckpointError(f"cannot resume: no checkpoint at {path} (a run stopped "
                                  "before its first epoch ended leaves none); start the run "
                                  "again without resume")
        state = load(path)
        try:
            history = self._check_checkpoint(state, loader)
        except CheckpointError as e:
            raise CheckpointError(f"cannot resume from {path}: {e}") from None
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            loader.load_state_dict(state["loader"])
            self.model.load_extra_states(state["extra_state"])
            saved_callbacks = state.get("callbacks", {})
            for cb in self.callbacks:
                if type(cb).__name__ in saved_callbacks:
                    cb.load_state_dict(saved_callbacks[type(cb).__name__])
        except Exception as e:  # noqa: BLE001 - any failure here is the checkpoint's
            raise CheckpointError(f"cannot resume from {path}: it does not match this model "
                                  f"and optimizer ({type(e).__name__}: {e!s:.200})") from None
        self.history = history
        self.best = dict(state["best"])
        self._bad_epochs, self._seconds = state["bad_epochs"], float(state["seconds"])
        best_path = self.out_dir / BEST
        if best_path.exists():
            best = load(best_path)
            if not isinstance(best, dict) or best.get("epoch") is None:
                raise CheckpointError(f"cannot resume: {best_path} is not a checkpoint of "
                                      "best weights")
            if best["epoch"] == self.best["epoch"]:
                try:
                    check_like(best["model"], self.model.state_dict(), "['model']")
                except CheckpointError as e:
                    raise CheckpointError(f"cannot resume from {best_path}: {e}") from None
                self._best_state = best["model"]
        return state["epoch"]

    def _check_checkpoint(self, state, loader) -> list:
        """Check ``state`` against the state this trainer would save; returns the
        history. Raises ``CheckpointError`` naming the first value that does not fit."""
        if not isinstance(state, dict):
            raise CheckpointError("it is not a trainer checkpoint")
        template = self._state(0, loader)
        template["optimizer"] = self._optimizer_template()
        del template["config"], template["callbacks"]  # other runs, other options
        state = {k: v for k, v in state.items() if k not in ("config", "callbacks")}
        if self.scheduler is None and state.get("scheduler") is not None:
            raise CheckpointError("it has a learning-rate schedule; this run has none")
        if self.scheduler is not None and state.get("scheduler") is None:
            raise CheckpointError("it has no learning-rate schedule; this run has one")
        check_like(state, template)
        self._check_settings(state, template)
        if state["epoch"] < 1 or state["bad_epochs"] < 0 or not (
                0 <= state["seconds"] < math.inf):
            raise CheckpointError("its epoch, bad_epochs or seconds are out of range")
        try:
            history = json.loads(state["history"])
        except ValueError:
            raise CheckpointError("its history is not valid JSON") from None
        check_history(history, state["epoch"])
        best = state["best"]
        if not 0 <= best["epoch"] <= state["epoch"]:
            raise CheckpointError(f"its best epoch {best['epoch']} is not one of the "
                                  f"{state['epoch']} finished epochs")
        for name, array in state["model"].items():
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise CheckpointError(f"parameter {name} is not finite")
        return history

    @staticmethod
    def _check_settings(state, template):
        """Hyperparameters must be this run's; counters and rates must be in range."""
        optimizer = state["optimizer"]
        check_settings(optimizer, template["optimizer"], "['optimizer']", _CHANGING)
        for i, group in enumerate(optimizer["param_groups"]):
            check_range(group["lr"], f"['optimizer']['param_groups'][{i}]['lr']")
        for key, values in optimizer["state"].items():
            if "step" in values:
                check_range(values["step"], f"['optimizer']['state'][{key}]['step']", 1)
        if state["scheduler"] is not None:
            check_settings(state["scheduler"], template["scheduler"], "['scheduler']",
                           _CHANGING)
            schedulers = [state["scheduler"], *state["scheduler"].get("_schedulers", [])]
            for i, scheduler in enumerate(schedulers):
                where = "['scheduler']" + (f"['_schedulers'][{i - 1}]" if i else "")
                for key in ("last_epoch", "_step_count", "cooldown_counter", "num_bad_epochs"):
                    if key in scheduler:
                        check_range(scheduler[key], f"{where}[{key!r}]", -1, 2**62)
                for k, lr in enumerate(scheduler.get("_last_lr", [])):
                    check_range(lr, f"{where}['_last_lr'][{k}]")

    @np.errstate(all="ignore")  # the probe's values are thrown away
    def _optimizer_template(self) -> dict:
        """The optimizer's state dict after one step: what a checkpoint of a run that
        has trained holds. The step is taken with zero gradients and then undone."""
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        before = self.optimizer.state_dict()
        values, grads = [p.data.copy() for p in params], [p.grad for p in params]
        try:
            for p in params:
                p.grad = np.zeros_like(p.data)
            self.optimizer.step()
            return self.optimizer.state_dict()
        finally:
            self.optimizer.load_state_dict(before)
            for p, value, grad in zip(params, values, grads):
                p.data[...] = value
                p.grad = grad

    def _write_history(self):
        """history.csv: rewritten whole the first time in a run, then one row appended per
        epoch (the checkpoint, not this report, is what a resumed run trusts)."""
        if not self.history:
            return
        fields = list(self.history[0])
        path = self.out_dir / "history.csv"
        if self._history_on_disk and path.exists():
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=fields, extrasaction="ignore").writerows(
                    self.history[self._history_on_disk:])
        else:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.history)
            atomic_write_text(path, buffer.getvalue())
        self._history_on_disk = len(self.history)

    def _write_reports(self, summary):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._write_history()  # only rows not yet on disk
        self.write_summary(summary)

    def write_summary(self, summary: dict):
        """Write ``summary`` (numbers, NumPy scalars and arrays allowed) to summary.json."""
        atomic_write_text(self.out_dir / "summary.json",
                          json.dumps(summary, indent=2, default=json_default) + "\n")


def _default_progress():
    """A bar where one can redraw itself (a terminal, a notebook), else a line per epoch."""
    if sys.stderr.isatty() or _in_notebook():
        return True
    return "log"


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (ipykernel merely imported is not enough)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


