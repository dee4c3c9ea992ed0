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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import nn
from .._io import atomic_write_text, json_default
from ..engine import no_grad
from ..errors import ChainruleError
from ..experiment import MODEL, RunConfig, build_model, build_optimizer, build_scheduler
from ..nn import functional as F
from ..nn.module import Module, Parameter
from ..serialization import save
from .fused import fused_step_for
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
    (K, 1, out). Input (K, N, D), or (N, D) shared by every member; output (K, N, C).

    Every parameter is a view of one array ``flat`` (K, P), member k's P numbers in row
    k: an optimizer over ``flat`` updates the whole population in one call, with
    per-member hyperparameters of shape (K, 1)."""

    def __init__(self, members: list):
        super().__init__()
        self.size = len(members)
        template = members[0]
        self._activations = [m for m in template
                             if not isinstance(m, nn.Linear | nn.Dropout)]
        linears = [m.linear_layers() for m in members]
        self.num_layers = len(linears[0])
        self._shapes = [layer.weight.data.T.shape for layer in linears[0]]  # (in, out)
        width = sum(n_in * n_out + n_out for n_in, n_out in self._shapes)
        self.flat = np.empty((self.size, width), dtype=linears[0][0].weight.dtype)
        for i, (weight, bias) in enumerate(self.views(self.flat)):
            weight[...] = np.stack([layers[i].weight.data.T for layers in linears])
            bias[...] = np.stack([layers[i].bias.data[None, :] for layers in linears])
            for name, view in ((f"weight{i}", weight), (f"bias{i}", bias)):
                parameter = Parameter(view)
                parameter.data = view  # the view itself, not a copy
                setattr(self, name, parameter)

    def views(self, flat, augmented=False):
        """Per layer, views of ``flat`` (K, P) laid out as the parameters are (also used
        for their gradients): (weight (K, in, out), bias (K, 1, out)); with
        ``augmented``, (weight, weight and bias (K, in + 1, out)), the bias being the
        row after the weights, so that x @ W + b = [x, 1] @ [W; b]."""
        K, views, at = flat.shape[0], [], 0
        for n_in, n_out in self._shapes:
            weight = flat[:, at:at + n_in * n_out].reshape(K, n_in, n_out)
            if augmented:
                views.append((weight, flat[:, at:at + (n_in + 1) * n_out].reshape(
                    K, n_in + 1, n_out)))
            else:
                views.append((weight, flat[:, at + n_in * n_out:at + (n_in + 1) * n_out]
                              .reshape(K, 1, n_out)))
            at += (n_in + 1) * n_out
        return views

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
        for (weight, bias), linear in zip(self.views(self.flat), model.linear_layers()):
            linear.weight.data[...] = weight[k].T
            linear.bias.data[...] = bias[k, 0]


def member_orders(seeds, n):
    """Each member's order of its n training examples, epoch after epoch, (K, n): what
    ``DataLoader(..., shuffle=True, seed=seed)`` draws, a permutation from
    ``np.random.default_rng(seed)`` at each epoch (tests check the two agree)."""
    generators = [np.random.default_rng(seed) for seed in seeds]
    while True:
        yield np.stack([g.permutation(n) for g in generators])


def member_losses(loss_fn, scores, labels):
    """Each member's mean loss over its minibatch: scores (K, B, C), labels (K, B) -> (K,)."""
    K, B, C = scores.shape
    per_example = loss_fn(scores.reshape(K * B, C), labels.reshape(K * B), reduction="none")
    return per_example.reshape(K, B).mean(axis=1)


class PopulationTrainer:
    """Train ``configs`` (sharing ``population_key``) as one batched network, with the
    same epochs, minibatch orders, losses and early stopping as ``Trainer`` per member.

    ``fused``: run each step as ``fused.FusedStep`` (hand-written forward and backward)
    when the architecture allows it (None, the default), or always through the engine
    (False); the numbers agree within float32 rounding.
    """

    def __init__(self, configs: list[RunConfig], fused: bool | None = None):
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
        dtype = self.model.flat.dtype
        column = (self.K, 1)  # per member, broadcast over the member's row of ``flat``
        self.base_lr = np.array([c.lr for c in self.configs], dtype=dtype).reshape(column)
        self.reg = np.array([c.reg for c in self.configs], dtype=dtype)
        # one optimizer of the first member's kind over all parameters at once, given
        # per-member hyperparameter arrays; the gradient is one (K, P) array as well
        self.flat_param = Parameter(self.model.flat)
        self.flat_param.data = self.model.flat
        self.flat_param.grad = np.zeros_like(self.model.flat)
        self.optimizer = build_optimizer(first, [self.flat_param])
        group = self.optimizer.param_groups[0]
        group["weight_decay"] = np.array([c.weight_decay for c in self.configs],
                                         dtype=dtype).reshape(column)
        # the schedule as factors of lr: stepped on a stand-in optimizer whose lr is 1
        stand_in = build_optimizer(RunConfig(optimizer="sgd", lr=1.0),
                                   [Parameter(np.zeros(1, dtype=dtype))])
        self.schedule = build_scheduler(first, stand_in)
        self.stand_in = stand_in
        self.loss_fn = MEMBER_LOSSES[first.loss]
        self.fused = None if fused is False else fused_step_for(self.members[0], first.loss)
        if fused and self.fused is None:
            raise ChainruleError(f"no fused step for this population ({first.activation} "
                                 f"activation, {first.loss} loss); use fused=None")
        fuse = self.fused is not None
        self.layers = self.model.views(self.model.flat, augmented=fuse)
        self.grads = self.model.views(self.flat_param.grad, augmented=fuse)
        # the fused step reads inputs with a column of ones (the bias input) after them
        self.X_train = self._inputs([d.X_train for d in self.data])
        self.y_train = np.stack([d.y_train for d in self.data])
        self.X_val = self._inputs([d.X_val for d in self.data])
        self.y_val = np.stack([d.y_val for d in self.data])

    def _inputs(self, arrays):
        X = np.stack(arrays)
        if self.fused is None:
            return X
        return np.concatenate([X, np.ones((*X.shape[:2], 1), X.dtype)], axis=2)

    def _set_lr(self, active):
        factor = self.stand_in.param_groups[0]["lr"]
        lr = self.base_lr * np.asarray(factor, dtype=self.base_lr.dtype)
        self.optimizer.param_groups[0]["lr"] = np.where(active[:, None], lr, 0).astype(
            lr.dtype)
        return lr.reshape(-1)

    def _penalty(self):
        """Per member: reg_k * sum of its squared weights, shape (K,)."""
        total = None
        for weight, _ in self.model.layer_params():
            squares = (weight * weight).sum(axis=(1, 2))
            total = squares if total is None else total + squares
        return total * self.reg

    def _forward_loss(self, X, y):
        """Per member loss (K,) float64 and correct predictions (K,) on one minibatch;
        afterwards ``_backward`` puts the gradients into ``flat_param.grad``."""
        if self.fused is not None:
            scores = self.fused.forward(self.layers, X)
            correct = (scores.argmax(axis=2) == y).sum(axis=1)
            values = self.fused.losses(scores, y)
            if self.reg.any():
                values = values + self.fused.penalty(self.layers, self.reg)
            return values, correct
        scores = self.model(X)
        losses = member_losses(self.loss_fn, scores, y)
        if self.reg.any():
            losses = losses + self._penalty()
        self._losses = losses
        return (losses.data.astype(np.float64),
                (scores.data.argmax(axis=2) == y).sum(axis=1))

    def _backward(self, X):
        if self.fused is not None:
            self.fused.backward(self.layers, self.grads, X,
                                self.reg if self.reg.any() else None)
            return
        for p in self.model.parameters():
            p.grad = None
        self._losses.sum().backward()
        for (weight, bias), (gw, gb) in zip(self.model.layer_params(), self.grads):
            gw[...], gb[...] = weight.grad, bias.grad  # into the optimizer's (K, P) array

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def _train_epoch(self, orders, epoch):
        """One pass over each active member's training data: per member (loss, accuracy)."""
        self.model.train()
        active = self.active
        K, batch_size = self.K, self.configs[0].batch_size
        # each member's permutation, as Trainer's DataLoader draws it; one gather per
        # epoch for all members instead of K per minibatch
        order = next(orders)
        members = np.arange(K)[:, None]
        X_epoch, y_epoch = self.X_train[members, order], self.y_train[members, order]
        loss_sum, correct, seen = np.zeros(K), np.zeros(K), 0
        for step, start in enumerate(range(0, order.shape[1], batch_size), 1):
            X = X_epoch[:, start:start + batch_size]
            y = y_epoch[:, start:start + batch_size]
            values, right = self._forward_loss(X, y)
            finite = np.isfinite(values)
            if not finite.all():  # as Trainer: stop at the first non-finite loss
                bad = active & ~finite
                for k in np.flatnonzero(bad):
                    self.diverged[k] = True
                    self.errors[k] = (f"training diverged at epoch {epoch}, step {step}: "
                                      f"the loss is {values[k]}; try a smaller learning rate")
                if bad.any():
                    active &= ~bad
                    self._set_lr(active)
            self._backward(X)
            self.optimizer.step()
            n = y.shape[1]
            loss_sum += np.where(finite, values, 0.0) * n
            correct += right
            seen += n
        return loss_sum / seen, correct / seen

    @no_grad()
    def evaluate(self, X, y, batch_size=None):
        """Per member (mean loss, accuracy), arrays (K,), of X (K, N, D), y (K, N)."""
        self.model.eval()
        N = X.shape[1]
        if batch_size is None:  # chunks whose widest activation, (K, n, width), stays in
            widest = max(w.shape[2] for w, _ in self.layers)  # cache: ~3x faster than one
            batch_size = max(16, 2**19 // (self.K * widest))  # big chunk
        loss_sum, correct = np.zeros(self.K), np.zeros(self.K)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start in range(0, N, batch_size):
                Xb, yb = X[:, start:start + batch_size], y[:, start:start + batch_size]
                if self.fused is not None:
                    scores = self.fused.forward(self.layers, Xb)
                    correct += (scores.argmax(axis=2) == yb).sum(axis=1)
                    losses = self.fused.losses(scores, yb, grad=False)
                else:
                    scores = self.model(Xb)
                    correct += (scores.data.argmax(axis=2) == yb).sum(axis=1)
                    losses = member_losses(self.loss_fn, scores, yb).data.astype(np.float64)
                loss_sum += losses * yb.shape[1]
        self.model.train()
        return loss_sum / N, correct / N

    def fit(self) -> list[dict]:
        """Train every member; returns per member {"summary", "history", "status", "error"}."""
        K = self.K
        n = len(self.data[0].y_train)  # a loader of positions: one batch, the permutation
        orders = member_orders([c.seed for c in self.configs], n)
        self.active, self.diverged, self.stopped = (np.ones(K, bool), np.zeros(K, bool),
                                                    np.zeros(K, bool))
        self.errors, self.records = [""] * K, []
        self.best_acc, self.best_epoch = np.full(K, -1.0), np.zeros(K, dtype=int)
        self.bad_epochs, self.seconds = np.zeros(K, dtype=int), np.zeros(K)
        self.best_flat = self.model.flat.copy()
        self.patience = np.array([-1 if c.patience is None else c.patience
                                  for c in self.configs])
        for epoch in range(1, self.configs[0].epochs + 1):
            if not self.active.any():
                break
            self._epoch(epoch, orders)
        # early stopping restores each member's best weights
        restore = (self.patience > 0) & (self.best_epoch > 0)
        self.model.flat[restore] = self.best_flat[restore]
        return self._results()

    def _epoch(self, epoch, orders):
        """One epoch of every active member, then each one's history, best and patience,
        as arrays over the members."""
        started = time.perf_counter()
        lr = self._set_lr(self.active)
        training = self.active.copy()
        train_loss, train_acc = self._train_epoch(orders, epoch)
        val_loss, val_acc = self.evaluate(self.X_val, self.y_val)
        if self.schedule is not None:
            self.schedule.step()
        self.seconds[training] += (time.perf_counter() - started) / training.sum()
        recorded = training & ~self.diverged
        self.records.append((epoch, recorded, train_loss, train_acc, val_loss, val_acc,
                             lr.astype(np.float64), self.seconds.copy()))
        improved = recorded & (val_acc > self.best_acc)
        self.best_acc[improved], self.best_epoch[improved] = val_acc[improved], epoch
        self.bad_epochs[improved] = 0
        self.bad_epochs[recorded & ~improved] += 1
        self.best_flat[improved] = self.model.flat[improved]
        done = recorded & (self.patience > 0) & (self.bad_epochs >= self.patience)
        self.stopped[done], self.active[done] = True, False

    def _histories(self) -> list[list[dict]]:
        """Each member's history rows (the epochs it trained, as Trainer records them)."""
        histories = [[] for _ in range(self.K)]
        keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")
        for epoch, recorded, *values in self.records:
            for k in np.flatnonzero(recorded):
                row = {"epoch": epoch}
                row.update((key, float(v[k])) for key, v in zip(keys, values))
                histories[k].append(row)
        return histories

    def _results(self) -> list[dict]:
        """Each member's outcome, with Trainer's summary for those that finished."""
        train_eval = self.evaluate(self.X_train, self.y_train)
        val_eval = self.evaluate(self.X_val, self.y_val)
        results = []
        for k, history in enumerate(self._histories()):
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
            trained = time.perf_counter()
            _in_parallel(trainer.write_member, [(k, Path(trial["dir"]), result) for k, (
                trial, result) in enumerate(zip(todo, results))])
    except Exception as e:  # the whole population failed: record it with every member
        error = str(e) if isinstance(e, ChainruleError) else f"{type(e).__name__}: {e}"
        for trial in todo:
            outcome = {"index": trial["index"], "status": "failed", "error": error,
                       "traceback": traceback.format_exc(limit=5),
                       "seconds": round(time.perf_counter() - started, 3)}
            write_outcome(trial["dir"], outcome)
            outcomes.append(outcome)
        return outcomes
    share = round((trained - started) / len(todo), 3)  # of the training
    finished = []
    for trial, result in zip(todo, results):
        outcome = {"index": trial["index"], "status": result["status"],
                   "error": result["error"], "seconds": share, "population": len(todo)}
        if result["status"] == "ok":
            summary = result["summary"]
            outcome.update({k: _finite(summary[k]) for k in
                            ("train_accuracy", "val_accuracy", "final_loss", "epochs")})
        finished.append((trial["dir"], outcome))
    # trial.json last: it says the member's folder is complete
    _in_parallel(write_outcome, finished)
    return outcomes + [outcome for _, outcome in finished]


def _in_parallel(write, calls, threads=8):
    """``write(*args)`` for each of ``calls`` from a few threads: each file is fsynced
    before it replaces the old one, and a disk commits fsyncs that wait together in one go
    (with K members, about K / threads waits instead of 8 K)."""
    if len(calls) <= 1:
        for args in calls:
            write(*args)
        return
    with ThreadPoolExecutor(min(threads, len(calls))) as pool:
        for future in [pool.submit(write, *args) for args in calls]:
            future.result()  # an error in one write is the population's error


def _finite(value):
    if isinstance(value, np.generic):
        value = value.item()
    return value if not isinstance(value, float) or math.isfinite(value) else None
