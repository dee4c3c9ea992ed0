"""Training steps recorded for the backprop player: ``chainrule train --record N``.

``StepRecorder(n, path)`` is a ``Trainer`` callback. For the first ``n`` optimizer steps
it keeps the loss, every Linear layer's weights and their gradients (taken after
``backward()``, before the step) and, for 2-D inputs, the decision regions of the model
over the plane of the minibatches' points. At the end it writes the backprop player of
the model's loss on the first four examples of the first minibatch (with the initial
weights), with a slider that scrubs through the recorded steps.

Small networks only: the record holds every weight ``n`` times, so a network with more
than ``MAX_VALUES / n`` parameters in its Linear layers is refused before training.
"""

from __future__ import annotations

import argparse

import numpy as np

from .._io import atomic_write_text
from ..engine import no_grad
from ..errors import ChainruleError
from ..nn import Linear
from ..tensor import tensor
from ..train import Callback
from .player import player_data, render_page

MAX_STEPS = 2000
MAX_VALUES = 4_000_000  # weights and gradients kept over all recorded steps
GRID = 40
EXTENT = 3.0  # regions cover [-3, 3]^2 of the (standardised) inputs
MAX_POINTS = 400


class StepRecorder(Callback):
    """Record the first ``steps`` training steps and write the player to ``path``;
    ``regions``: draw the predicted class over the plane of 2-D inputs (not for a
    regression, nor inputs that are features computed from the points)."""

    def __init__(self, steps: int, path, regions: bool = True):
        if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise ChainruleError(f"--record: the number of steps must be from 1 to "
                                 f"{MAX_STEPS}, got {steps}")
        self.steps, self.path, self.regions = steps, path, regions
        self.record = {"steps": [], "points": {"x": [], "y": []}}
        self._batch, self._loss, self._graph, self._epoch = None, None, None, 0
        self.written = None

    def on_train_begin(self, trainer):
        linears = [m for m in trainer.model.modules() if isinstance(m, Linear)]
        size = sum(m.weight.size for m in linears)
        if size * self.steps * 2 > MAX_VALUES:
            raise ChainruleError(f"--record {self.steps}: the network has {size} weights, too "
                                 f"many to keep {self.steps} times; record fewer steps "
                                 "or use a smaller network")
        self._linears = linears
        original = trainer.training_loss

        def training_loss(X, y):  # the loss and minibatch of each step, as they happen
            loss, scores = original(X, y)
            self._batch, self._loss = (X, y), loss
            return loss, scores

        trainer.training_loss = training_loss

    def on_epoch_begin(self, trainer, epoch):
        self._epoch = epoch

    def on_after_backward(self, trainer):
        done = len(self.record["steps"])
        if done >= self.steps:
            return
        X, y = self._batch
        if done == 0:
            self._graph = self._small_graph(trainer, X, y)
        points = self.record["points"]
        if X.shape[1] == 2 and len(points["y"]) < MAX_POINTS:
            take = MAX_POINTS - len(points["y"])
            points["x"] += np.round(np.asarray(X[:take], dtype=np.float64), 4).tolist()
            points["y"] += np.asarray(y[:take]).tolist()
        self.record["steps"].append({
            "step": done + 1, "epoch": self._epoch, "loss": float(self._loss.item()),
            "layers": [{"name": str(k), "W": _short(m.weight.data),
                        "gW": _short(m.weight.grad if m.weight.grad is not None
                                     else np.zeros(m.weight.shape))}
                       for k, m in enumerate(self._linears)],
            "regions": (self._regions(trainer.model, X) if X.shape[1] == 2 and self.regions
                        else None),
        })

    def on_train_end(self, trainer):
        if not self.record["steps"] or self._graph is None:
            return
        data = dict(self._graph)
        self.record["extent"] = [-EXTENT, EXTENT, -EXTENT, EXTENT]
        data["record"] = self.record
        atomic_write_text(self.path, render_page(data))
        self.written = str(self.path)

    # ----- helpers -----------------------------------------------------------------------
    def _small_graph(self, trainer, X, y) -> dict:
        """The player's data for the loss on the first four examples (evaluation mode,
        so that dropout draws no random numbers and the run stays the same)."""
        model, was_training = trainer.model, trainer.model.training
        model.eval()
        try:
            Xs, ys = tensor(np.asarray(X[:4]), name="X"), np.asarray(y[:4])

            def build():
                return trainer.loss_fn(model(Xs), ys)

            named = []  # parameters shown by their names in the model while the page is made
            for name, p in model.named_parameters():
                if p.name is None:
                    p.name = name
                    named.append(p)
            try:
                return player_data(build(), recompute=build,
                                   title="the loss on 4 training examples, and the "
                                         "recorded training steps")
            finally:
                for p in named:
                    p.name = None
        finally:
            model.train(was_training)

    @no_grad()
    def _regions(self, model, X) -> dict:
        """The predicted class over a square around the standardised data (inputs of 2-D
        data sets are standardised, so [-3, 3] holds nearly every point)."""
        was_training = model.training
        model.eval()
        try:
            xs = np.linspace(-EXTENT, EXTENT, GRID)
            gx, gy = np.meshgrid(xs, xs)
            plane = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.asarray(X).dtype)
            classes = model(tensor(plane)).data.argmax(axis=1)
        finally:
            model.train(was_training)
        return {"size": GRID, "classes": classes.astype(int).tolist()}


def _short(a) -> list:
    """An array as nested lists of numbers with 4 significant digits (a smaller page)."""
    a = np.asarray(a, dtype=np.float64)
    return np.vectorize(lambda v: float(f"{v:.4g}"))(a).tolist() if a.size else a.tolist()


# ----- the command line --------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--record", type=int, metavar="N",
                        help="record the first N training steps (small networks) and write "
                             "OUT/player.html to scrub through them (default: none)")


def callbacks(args) -> list:
    if not getattr(args, "record", None):
        return []
    if not args.out:
        raise ChainruleError("--record needs --out: the player is written into that folder")
    from pathlib import Path

    Path(args.out).mkdir(parents=True, exist_ok=True)
    plane = (getattr(args, "features", None) in (None, ["x1", "x2"])
             and getattr(args, "loss", None) != "mse")
    return [StepRecorder(args.record, Path(args.out) / "player.html", regions=plane)]


def report(callbacks_) -> list[str]:
    return [f"recorded {len(c.record['steps'])} steps: open {c.written}"
            for c in callbacks_ if isinstance(c, StepRecorder) and c.written]
