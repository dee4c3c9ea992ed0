"""Populations: K trials of one architecture trained at once, as one batched network.

Member k of a population is the network ``MLP(D, hidden, C, seed=seed_k)`` of its own
trial. Stacked, layer i's weights become one Parameter of shape (K, in, out) and its bias
(K, 1, out); a minibatch (K, B, D) holds each member's own examples in its own order, and
one batched matmul per layer does the forward pass of all K networks:

    h = x @ W + b          (K, B, in) @ (K, in, out) + (K, 1, out) -> (K, B, out)

The loss is the sum of the members' losses, L = sum_k L_k. Member k's weights appear in
L_k alone, so dL/dW_k = dL_k/dW_k: backward of the sum gives every member exactly the
gradient it would get on its own. Each member keeps its own learning rate, weight decay
(arrays of shape (K, 1, 1) that the optimizers broadcast), regularization strength,
data order, early stopping (a stopped member's learning rate becomes 0 and its best
weights are restored at the end) and divergence (a member whose loss is not finite is
recorded as diverged and frozen; its slice cannot reach the others').

What can share a population: trials whose options differ only in lr, weight_decay, reg,
seed and patience. Dropout and the plateau schedule (which needs each member's own
validation loss to step) are trained one trial at a time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
import traceback
from pathlib import Path

import numpy as np

from .. import nn
from .._io import atomic_write_text, json_default
from ..data import DataLoader
from ..engine import no_grad
from ..errors import ChainruleError
from ..experiment import MODEL, RunConfig, build_model, build_optimizer, build_scheduler
from ..nn import functional as F
from ..nn.module import Module, Parameter
from ..serialization import save
from .trial import finished_outcome, load_trial_data, one_blas_thread, write_outcome

MEMBER_OPTIONS = ("lr", "weight_decay", "reg", "seed", "patience")
MEMBER_LOSSES = {"softmax": F.cross_entropy, "svm": F.hinge_loss}


def population_key(config: RunConfig):
    """What trials must share to be trained together (None: train this one alone)."""
    if config.dropout or config.lr_schedule == "plateau":
        return None
    if config.l1 or config.loss not in MEMBER_LOSSES or isinstance(config.activation, list):
        return None  # an L1 term, a regression, an activation per layer: trained alone
    values = config.to_dict()
    return json.dumps({k: v for k, v in values.items()
                       if k not in MEMBER_OPTIONS and k != "out"}, sort_keys=True)


class PopulationMLP(Module):
    """K networks of one architecture as one: ``weight{i}`` (K, in, out), ``bias{i}``
    (K, 1, out). Input (K, N, D), or (N, D) shared by every member; output (K, N, C)."""

    def __init__(self, members: list):
        super().__init__()
        self.size = len(members)
        template = members[0]
        self._activations = [m for m in template
                             if not isinstance(m, nn.Linear | nn.Dropout)]
        linears = [m.linear_layers() for m in members]
        self.num_layers = len(linears[0])
        for i in range(self.num_layers):
            weight = np.stack([layers[i].weight.data.T for layers in linears])
            bias = np.stack([layers[i].bias.data[None, :] for layers in linears])
            setattr(self, f"weight{i}", Parameter(np.ascontiguousarray(weight)))
            setattr(self, f"bias{i}", Parameter(bias))

    def layer_params(self):
        return [(getattr(self, f"weight{i}"), getattr(self, f"bias{i}"))
                for i in range(self.num_layers)]

    def forward(self, x):
        for i, (weight, bias) in enumerate(self.layer_params()):
            x = x @ weight + bias
            if i < self.num_layers - 1 and self._activations:
                x = self._activations[i](x)
        return x

    def copy_member_into(self, k, model):
        """Write member k's weights into ``model``, an MLP of the same architecture."""
        for (weight, bias), linear in zip(self.layer_params(), model.linear_layers()):
            linear.weight.data[...] = weight.data[k].T
            linear.bias.data[...] = bias.data[k, 0]


def member_losses(loss_fn, scores, labels):
    """Each member's mean loss over its minibatch: scores (K, B, C), labels (K, B) -> (K,)."""
    K, B, C = scores.shape
    per_example = loss_fn(scores.reshape(K * B, C), labels.reshape(K * B), reduction="none")
    return per_example.reshape(K, B).mean(axis=1)


class PopulationTrainer:
    """Train ``configs`` (sharing ``population_key``) as one batched network, with the
    same epochs, minibatch orders, losses and early stopping as ``Trainer`` per member."""

    def __init__(self, configs: list[RunConfig]):
        self.configs = [c.resolved() for c in configs]
        keys = {population_key(c) for c in self.configs}
        if len(keys) != 1 or None in keys:
            raise ChainruleError("a population's trials must share every option but "
                                 + ", ".join(MEMBER_OPTIONS) + " and use no dropout or "
                                 "plateau schedule")
        first = self.configs[0]
        self.K = len(self.configs)
        loaded = [load_trial_data(c) for c in self.configs]
        self.data = [d for d, _ in loaded]
        self.scalers = [s for _, s in loaded]
        shapes = {(d.X_train.shape, d.X_val.shape) for d in self.data}
        if len(shapes) != 1:
            raise ChainruleError("a population's members need splits of equal sizes")
        d0 = self.data[0]
        self.members = [build_model(c, d0.num_features, d0.num_classes) for c in self.configs]
        self.model = PopulationMLP(self.members)
        dtype = self.model.weight0.dtype
        column = (self.K, 1, 1)
        self.base_lr = np.array([c.lr for c in self.configs], dtype=dtype).reshape(column)
        self.reg = np.array([c.reg for c in self.configs], dtype=dtype)
        # the optimizer of the first member's kind, given per-member hyperparameter arrays
        self.optimizer = build_optimizer(first, self.model.parameters())
        group = self.optimizer.param_groups[0]
        group["weight_decay"] = np.array([c.weight_decay for c in self.configs],
                                         dtype=dtype).reshape(column)
        # the schedule as factors of lr: stepped on a stand-in optimizer whose lr is 1
        stand_in = build_optimizer(RunConfig(optimizer="sgd", lr=1.0),
                                   [Parameter(np.zeros(1, dtype=dtype))])
        self.schedule = build_scheduler(first, stand_in)
        self.stand_in = stand_in
        self.loss_fn = MEMBER_LOSSES[first.loss]
        self.X_train = np.stack([d.X_train for d in self.data])
        self.y_train = np.stack([d.y_train for d in self.data])
        self.X_val = np.stack([d.X_val for d in self.data])
        self.y_val = np.stack([d.y_val for d in self.data])

    def _set_lr(self, active):
        factor = self.stand_in.param_groups[0]["lr"]
        lr = self.base_lr * np.asarray(factor, dtype=self.base_lr.dtype)
        self.optimizer.param_groups[0]["lr"] = np.where(active[:, None, None], lr, 0).astype(
            lr.dtype)
        return lr.reshape(-1)

    def _penalty(self):
        """Per member: reg_k * sum of its squared weights, shape (K,)."""
        total = None
        for weight, _ in self.model.layer_params():
            squares = (weight * weight).sum(axis=(1, 2))
            total = squares if total is None else total + squares
        return total * self.reg

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def _train_epoch(self, orders, epoch):
        """One pass over each active member's training data: per member (loss, accuracy)."""
        self.model.train()
        active = self.active
        K, batch_size = self.K, self.configs[0].batch_size
        # each member's permutation, drawn as Trainer's DataLoader draws it; one gather
        # per epoch for all members instead of K per minibatch
        order = np.stack([next(iter(loader)) for loader in orders])
        X_epoch = np.take_along_axis(self.X_train, order[:, :, None], axis=1)
        y_epoch = np.take_along_axis(self.y_train, order, axis=1)
        loss_sum, correct, seen = np.zeros(K), np.zeros(K), 0
        for step, start in enumerate(range(0, order.shape[1], batch_size), 1):
            X = X_epoch[:, start:start + batch_size]
            y = y_epoch[:, start:start + batch_size]
            scores = self.model(X)
            losses = member_losses(self.loss_fn, scores, y)
            if self.reg.any():
                losses = losses + self._penalty()
            values = losses.data.astype(np.float64)
            bad = active & ~np.isfinite(values)
            for k in np.flatnonzero(bad):  # as Trainer: stop at the first non-finite loss
                self.diverged[k] = True
                self.errors[k] = (f"training diverged at epoch {epoch}, step {step}: the loss is "
                             f"{values[k]}; try a smaller learning rate")
            if bad.any():
                active &= ~bad
                self._set_lr(active)
            self.optimizer.zero_grad()
            losses.sum().backward()
            self.optimizer.step()
            n = y.shape[1]
            loss_sum += np.where(np.isfinite(values), values, 0.0) * n
            correct += (scores.data.argmax(axis=2) == y).sum(axis=1)
            seen += n
        return loss_sum / seen, correct / seen

    @no_grad()
    def evaluate(self, X, y, batch_size=None):
        """Per member (mean loss, accuracy), arrays (K,), of X (K, N, D), y (K, N)."""
        self.model.eval()
        N = X.shape[1]
        if batch_size is None:  # chunks whose widest activation, (K, n, width), stays in
            widest = max(w.shape[2] for w, _ in self.model.layer_params())  # cache: ~3x
            batch_size = max(16, 2**19 // (self.K * widest))  # faster than one big chunk
        loss_sum, correct = np.zeros(self.K), np.zeros(self.K)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start in range(0, N, batch_size):
                Xb, yb = X[:, start:start + batch_size], y[:, start:start + batch_size]
                scores = self.model(Xb)
                losses = member_losses(self.loss_fn, scores, yb).data.astype(np.float64)
                loss_sum += losses * yb.shape[1]
                correct += (scores.data.argmax(axis=2) == yb).sum(axis=1)
        self.model.train()
        return loss_sum / N, correct / N

    def fit(self) -> list[dict]:
        """Train every member; returns per member {"summary", "history", "status", "error"}."""
        K = self.K
        n = len(self.data[0].y_train)  # a loader of positions: one batch, the permutation
        orders = [DataLoader(np.arange(n), batch_size=n, shuffle=True, seed=c.seed)
                  for c in self.configs]
        self.active, self.diverged, self.stopped = (np.ones(K, bool), np.zeros(K, bool),
                                                    np.zeros(K, bool))
        self.errors, self.histories = [""] * K, [[] for _ in range(K)]
        self.best_acc, self.best_epoch = np.full(K, -1.0), np.zeros(K, dtype=int)
        self.bad_epochs, self.seconds = np.zeros(K, dtype=int), np.zeros(K)
        self.best_weights = [p.data.copy() for p in self.model.parameters()]
        self.patience = np.array([-1 if c.patience is None else c.patience
                                  for c in self.configs])
        for epoch in range(1, self.configs[0].epochs + 1):
            if not self.active.any():
                break
            self._epoch(epoch, orders)
        for k in range(K):  # early stopping restores each member's best weights
            if self.patience[k] > 0 and self.best_epoch[k] > 0:
                for saved, p in zip(self.best_weights, self.model.parameters()):
                    p.data[k] = saved[k]
        return self._results()

    def _epoch(self, epoch, orders):
        """One epoch of every active member, then each one's history, best and patience."""
        started = time.perf_counter()
        lr = self._set_lr(self.active)
        training = self.active.copy()
        train_loss, train_acc = self._train_epoch(orders, epoch)
        val_loss, val_acc = self.evaluate(self.X_val, self.y_val)
        if self.schedule is not None:
            self.schedule.step()
        self.seconds[training] += (time.perf_counter() - started) / training.sum()
        for k in np.flatnonzero(training & ~self.diverged):
            self.histories[k].append({
                "epoch": epoch, "train_loss": train_loss[k], "train_accuracy": train_acc[k],
                "val_loss": val_loss[k], "val_accuracy": val_acc[k], "lr": float(lr[k]),
                "seconds": self.seconds[k]})
            if val_acc[k] > self.best_acc[k]:
                self.best_acc[k], self.best_epoch[k], self.bad_epochs[k] = val_acc[k], epoch, 0
                for saved, p in zip(self.best_weights, self.model.parameters()):
                    saved[k] = p.data[k]
            else:
                self.bad_epochs[k] += 1
            if self.patience[k] > 0 and self.bad_epochs[k] >= self.patience[k]:
                self.stopped[k], self.active[k] = True, False

    def _results(self) -> list[dict]:
        """Each member's outcome, with Trainer's summary for those that finished."""
        train_eval = self.evaluate(self.X_train, self.y_train)
        val_eval = self.evaluate(self.X_val, self.y_val)
        results = []
        for k, history in enumerate(self.histories):
            if self.diverged[k]:
                results.append({"status": "diverged", "error": self.errors[k],
                                "history": history})
                continue
            summary = {"train_accuracy": train_eval[1][k], "val_accuracy": val_eval[1][k],
                       "train_loss": train_eval[0][k], "val_loss": val_eval[0][k],
                       "final_loss": history[-1]["train_loss"] if history else None,
                       "epochs": len(history), "best_epoch": int(self.best_epoch[k]),
                       "stopped_early": bool(self.stopped[k]),
                       "seconds": round(self.seconds[k], 3),
                       "config": self.configs[k].to_dict(), "population": self.K}
            results.append({"status": "ok", "error": "", "summary": summary,
                            "history": history})
        return results

    def write_member(self, k, folder: Path, result: dict):
        """The member's run folder: history.csv, summary.json and model.crk."""
        folder.mkdir(parents=True, exist_ok=True)
        history = result["history"]
        if history:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
            atomic_write_text(folder / "history.csv", buffer.getvalue())
        if result["status"] != "ok":
            return
        config = self.configs[k]
        summary = dict(result["summary"], dataset=repr(self.data[k]))
        atomic_write_text(folder / "summary.json",
                          json.dumps(summary, indent=2, default=json_default) + "\n")
        self.model.copy_member_into(k, self.members[k])
        save({"config": {**config.to_dict(), "out": str(folder)},
              "model": self.members[k].state_dict(),
              "scaler": self.scalers[k].state_dict()}, folder / MODEL)




def run_population(trials: list[dict]) -> list[dict]:
    """Run sweep trials (as ``run_trial`` takes them) as one population; returns each
    trial's outcome. Trials already finished are not run again; the rest start afresh
    (a population keeps no checkpoints between epochs)."""
    outcomes, todo = [], []
    for trial in trials:
        done = finished_outcome(trial["dir"])
        (outcomes.append(done) if done is not None else todo.append(trial))
    if not todo:
        return outcomes
    started = time.perf_counter()
    try:
        with one_blas_thread():
            trainer = PopulationTrainer([RunConfig.from_dict(t["config"]) for t in todo])
            results = trainer.fit()
            for k, (trial, result) in enumerate(zip(todo, results)):
                trainer.write_member(k, Path(trial["dir"]), result)
    except Exception as e:  # the whole population failed: record it with every member
        error = str(e) if isinstance(e, ChainruleError) else f"{type(e).__name__}: {e}"
        for trial in todo:
            outcome = {"index": trial["index"], "status": "failed", "error": error,
                       "traceback": traceback.format_exc(limit=5),
                       "seconds": round(time.perf_counter() - started, 3)}
            write_outcome(trial["dir"], outcome)
            outcomes.append(outcome)
        return outcomes
    share = round((time.perf_counter() - started) / len(todo), 3)
    for trial, result in zip(todo, results):
        outcome = {"index": trial["index"], "status": result["status"],
                   "error": result["error"], "seconds": share, "population": len(todo)}
        if result["status"] == "ok":
            summary = result["summary"]
            outcome.update({k: _finite(summary[k]) for k in
                            ("train_accuracy", "val_accuracy", "final_loss", "epochs")})
        write_outcome(trial["dir"], outcome)
        outcomes.append(outcome)
    return outcomes


def _finite(value):
    if isinstance(value, np.generic):
        value = value.item()
    return value if not isinstance(value, float) or math.isfinite(value) else None
