"""One playground session: a network trained by chainrule's own ``Trainer`` in a thread.

The run is built exactly as ``chainrule train`` builds it (``experiment.build_model``,
``build_optimizer``, ``build_scheduler`` and ``Trainer``), so the exported command
reproduces every number. A ``Callback`` is the session's hand inside the loop: at the
start and after each epoch it publishes a frame (losses, accuracy, weights, the
gradients of the last step, every neuron's output over the plane), obeys play / pause /
step, applies weights edited by hand and settings changed while training (``LIVE``),
and runs the requests of the page (exports, the player of a neuron) while the model
holds still.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import os
import queue
import secrets
import tempfile
import threading
import time

import numpy as np

from .. import nn
from ..engine import no_grad
from ..errors import ChainruleError
from ..experiment import build_model, build_optimizer, build_scheduler
from ..serialization import save
from ..tensor import tensor
from ..train import Callback, Trainer
from .config import DATA_FILE, PlaygroundConfig
from .data import data_csv, features, make_dataset

GRID = 40  # heatmaps are GRID x GRID samples of the plane
FRAME_INTERVAL = 0.05  # seconds between frames while training runs (20 a second at most)
HISTORY_POINTS = 400  # loss curves are sent with at most this many points
# Settings that change the running network's training without a restart, as in
# TensorFlow Playground; any other change (data, architecture, seed) starts again.
LIVE = ("lr", "regularization", "reg_rate", "batch_size", "optimizer", "momentum",
        "weight_decay", "lr_schedule", "warmup")


class _Stop(Exception):
    """Raised inside the training loop to end a session's run."""


def build_network(config: PlaygroundConfig, num_features: int, num_classes: int):
    """``experiment.build_model``'s MLP: the weights ``chainrule train`` starts from."""
    return build_model(config.run_config().resolved(), num_features, num_classes)


class Session(Callback):
    """A training run that a page drives; see the module's description."""

    def __init__(self, config: PlaygroundConfig, upload=None):
        self.id = secrets.token_urlsafe(12)
        self.config, self.upload = config, upload
        self.edited = False
        self.live_changes: list[str] = []  # settings changed while it trained
        self._requests: queue.Queue = queue.Queue()
        self._playing = False
        self._steps_left = 0
        self._lock = threading.Lock()
        self.frame, self.version = None, 0
        self.data, self.scaler, (self.raw_train, self.raw_test) = make_dataset(config, upload)
        run = config.run_config().resolved()
        self.model = build_network(config, self.data.num_features, self.data.num_classes)
        self.optimizer = build_optimizer(run, self.model.parameters())
        self.trainer = Trainer(self.model, self.optimizer, loss=run.loss,
                               scheduler=build_scheduler(run, self.optimizer), reg=run.reg,
                               l1=run.l1, epochs=run.epochs, batch_size=run.batch_size,
                               patience=run.patience, seed=run.seed, progress=False,
                               callbacks=[self])
        self.regression = self.trainer.regression
        self.epochs_per_second = 20.0  # pace of play, so that training can be watched; 0: no limit
        self._epoch_started = time.monotonic()
        self._grads, self._record = None, None
        self._last_frame = 0.0
        self.summary, self.error, self.finished = None, None, False
        self.extent = _extent(np.concatenate([self.raw_train, self.raw_test]))
        self._plane = self._plane_inputs()
        self._thread = threading.Thread(target=self._run, name=f"playground-{self.id[:6]}",
                                        daemon=True)
        self._thread.start()

    # ----- what the page sees ---------------------------------------------------------------
    def describe(self) -> dict:
        """What does not change while the session runs: data, features, the command."""
        return {
            "type": "session", "id": self.id, "config": self.config.to_dict(),
            "classes": self.data.num_classes, "regression": self.regression,
            "extent": self.extent, "grid": GRID,
            "train": {"x": _round(self.raw_train), "y": self.data.y_train.tolist()},
            "test": {"x": _round(self.raw_test), "y": self.data.y_val.tolist()},
            "features": {name: _heat(self._plane[:, k])
                         for k, name in enumerate(self.config.features)},
            **self.export_info(),
        }

    def export_info(self) -> dict:
        """The command that reproduces the run, whether it needs the data file, and what
        the command cannot reproduce (hand-edited weights, settings changed while it ran:
        the command runs with today's settings from the start)."""
        return {"command": self.config.command(),
                "data_file": DATA_FILE if self.config.run_config().data else None,
                "differences": self.differences()}

    def differences(self) -> list[str]:
        return self.live_changes + (["weights edited by hand"] if self.edited else [])

    def _publish(self, force=False):
        now = time.monotonic()
        if not force and now - self._last_frame < FRAME_INTERVAL:
            return
        self._last_frame = now
        frame = self._frame()
        with self._lock:
            self.frame, self.version = frame, self.version + 1

    @no_grad()
    def _frame(self) -> dict:
        model = self.model
        history = self.trainer.history + ([self._record] if self._record else [])
        was_training = model.training
        model.eval()
        try:
            neurons = []
            h = tensor(self._plane)
            for m in model:
                h = m(h)
                if not isinstance(m, nn.Linear | nn.Dropout) and m is not model[-1]:
                    neurons.append([_heat(h.data[:, j]) for j in range(h.shape[1])])
            scores = h.data.astype(np.float64)
            test_scores = model(tensor(self.data.X_val)).data
        finally:
            model.train(was_training)
        if self.regression:  # one real value, shown from -1 to 1 as in TensorFlow Playground
            output, confusion = {"value": _b64(np.round(
                (np.clip(scores[:, 0], -1, 1) + 1) * 127.5).astype(np.uint8))}, None
        else:
            output, confusion = self._classes(scores, test_scores.argmax(axis=1))
        linears = [m for m in model if isinstance(m, nn.Linear)]
        step = max(1, len(history) // HISTORY_POINTS)
        curve = history[::step] + ([history[-1]] if history and (len(history) - 1) % step else [])
        return {
            "type": "frame", "epoch": len(history),
            **self._scores(history),
            "lr": self.trainer.current_lr(),
            "curve": {"epoch": [r["epoch"] for r in curve],
                      "train": [r["train_loss"] for r in curve],
                      "test": [r["val_loss"] for r in curve]},
            "weights": [_round(m.weight.data) for m in linears],
            "biases": [_round(m.bias.data) for m in linears if m.bias is not None],
            "grads": self._grads,
            "neurons": neurons,
            "output": output, "confusion": confusion,
            "settings": self._training_settings(),
            "playing": self._playing, "finished": self.finished,
            "stopped_early": bool(self.summary and self.summary.get("stopped_early")),
            "error": self.error, "edited": self.edited,
        }

    def _scores(self, history) -> dict:
        """The last epoch's losses and accuracies; before the first, the untrained
        network's (as TensorFlow Playground shows them at step 0)."""
        if history:
            last = history[-1]
        else:
            (train_loss, train_acc), (val_loss, val_acc) = (
                self.trainer.evaluate(self.data.X_train, self.data.y_train),
                self.trainer.evaluate(self.data.X_val, self.data.y_val))
            last = {"train_loss": train_loss, "val_loss": val_loss,
                    "train_accuracy": train_acc, "val_accuracy": val_acc}
        return {"train_loss": last["train_loss"], "test_loss": last["val_loss"],
                "train_accuracy": last["train_accuracy"], "test_accuracy": last["val_accuracy"]}

    def _training_settings(self) -> dict:
        """What the training loop uses now, read from its own objects."""
        trainer, loader = self.trainer, getattr(self.trainer, "loader", None)
        return {"optimizer": type(trainer.optimizer).__name__,
                "schedule": type(trainer.scheduler).__name__ if trainer.scheduler else None,
                "batch_size": loader.batch_size if loader else trainer.batch_size,
                "l2": trainer.reg, "l1": trainer.l1}

    def _classes(self, scores, test_pred):
        """The output heatmaps (class, confidence, probability of the last class) and the
        confusion matrix of the test points."""
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        classes = self.data.num_classes
        confusion = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(confusion, (self.data.y_val, test_pred), 1)
        return ({"class": _b64(probs.argmax(axis=1).astype(np.uint8)),
                 "confidence": _b64(np.round(probs.max(axis=1) * 255).astype(np.uint8)),
                 "p1": _b64(np.round(probs[:, -1] * 255).astype(np.uint8))},
                confusion.tolist())

    def _plane_inputs(self) -> np.ndarray:
        x0, x1, y0, y1 = self.extent
        xs = np.linspace(x0, x1, GRID)
        ys = np.linspace(y0, y1, GRID)
        gx, gy = np.meshgrid(xs, ys)  # row r holds y = ys[r]: the page draws it bottom up
        raw = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)
        return features(self.scaler.transform(raw), self.config.features)

    # ----- the training thread ---------------------------------------------------------------
    def _run(self):
        try:
            try:
                self.summary = self.trainer.fit(self.data)
            except (ChainruleError, FloatingPointError, ValueError) as e:
                self.error = str(e)  # e.g. the loss diverged: the page says so
            self.finished, self._playing = True, False
            self._publish(force=True)
            while True:  # the page may still ask for exports and players
                self._serve_requests(block=True)
        except _Stop:
            return

    def on_train_begin(self, trainer):
        self._gradients_now()
        self._publish(force=True)
        self._control()

    def on_after_backward(self, trainer):
        self._capture_grads()

    def on_epoch_end(self, trainer, record):
        # Trainer appends the epoch's record to its history after this call: the frames
        # made meanwhile count it already.
        self._record = record
        try:
            self._control()
        finally:
            self._record = None

    def _capture_grads(self):
        self._grads = [_round(m.weight.grad) if m.weight.grad is not None else None
                       for m in self.model if isinstance(m, nn.Linear)]

    def _gradients_now(self):
        """Before the first step: the gradients of the loss on the whole training set."""
        was_training = self.model.training
        self.model.eval()
        try:
            loss, _ = self.trainer.training_loss(tensor(self.data.X_train),
                                                 self.data.y_train)
            self.optimizer.zero_grad()
            loss.backward()
            self._capture_grads()
            self.optimizer.zero_grad()
        finally:
            self.model.train(was_training)

    def _control(self):
        """Between epochs: publish, then wait while paused, serving the page's requests."""
        if self._steps_left > 0:
            self._steps_left -= 1
            if self._steps_left == 0:
                self._playing = False
        self._serve_requests(block=False)
        while not self._playing and self._steps_left == 0:
            self._publish(force=True)
            self._serve_requests(block=True)
        if self._playing and self.epochs_per_second > 0:
            wait = self._epoch_started + 1 / self.epochs_per_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._epoch_started = time.monotonic()
        self._publish()

    def _serve_requests(self, block: bool):
        while True:
            try:
                request = self._requests.get(block=block, timeout=None)
            except queue.Empty:
                return
            fn, future = request
            if fn is None:
                raise _Stop
            try:
                future.set_result(fn())
            except Exception as e:  # handed to the caller, who reports it
                future.set_exception(e)
            if block:
                return

    # ----- what the page asks --------------------------------------------------------------
    def call(self, fn, timeout: float = 30.0):
        """Run ``fn()`` in the training thread between two epochs; returns its result."""
        if not self._thread.is_alive():  # stopped: nothing else touches the model now
            return fn()
        future = concurrent.futures.Future()
        self._requests.put((fn, future))
        return future.result(timeout=timeout)

    def play(self):
        def go():
            self._playing, self._steps_left = True, 0
        self.call(go)

    def pause(self):
        def stop():
            self._playing = False
        self.call(stop)

    def step(self, epochs: int = 1):
        def one():
            self._steps_left = epochs
        self.call(one)

    def edit_weight(self, layer: int, row: int, col: int, value: float):
        """Set one weight by hand (the run then differs from the exported command)."""
        if not (isinstance(value, int | float) and np.isfinite(value) and abs(value) <= 100):
            raise ChainruleError("a weight must be a number between -100 and 100")

        def edit():
            linears = [m for m in self.model if isinstance(m, nn.Linear)]
            if not (0 <= layer < len(linears)):
                raise ChainruleError(f"no layer {layer}")
            W = linears[layer].weight.data
            if not (0 <= row < W.shape[0] and 0 <= col < W.shape[1]):
                raise ChainruleError(f"layer {layer} has no weight ({row}, {col})")
            W[row, col] = value
            self.edited = True
            self._publish(force=True)
        self.call(edit)

    def checkpoint_bytes(self) -> bytes:
        """The model as a run's ``model.crk``: ``chainrule evaluate --checkpoint`` and
        ``cr.load_run`` read it (with the data file beside it, when the run needs one)."""
        def write():
            fd, path = tempfile.mkstemp(suffix=".crk")
            os.close(fd)
            try:
                save({"config": self.config.run_config().to_dict(),
                      "playground": self.config.to_dict(), "model": self.model.state_dict(),
                      "scaler": self.scaler.state_dict(), "epoch": len(self.trainer.history)},
                     path)
                with open(path, "rb") as f:
                    return f.read()
            finally:
                os.unlink(path)
        return self.call(write)

    def data_csv(self) -> str:
        """The session's points as the CSV the exported command reads (``--data``)."""
        return data_csv(self.data, self.raw_train, self.raw_test)

    def change_live(self, config: PlaygroundConfig) -> bool:
        """Apply ``config`` to the network while it trains, if it differs from the
        current settings only in ``LIVE`` ones and training has begun; returns whether
        it did (otherwise the caller starts a new session: before the first epoch that
        is the same and keeps the run reproducible)."""
        changed = [f.name for f in dataclasses.fields(config)
                   if getattr(config, f.name) != getattr(self.config, f.name)]
        if not changed or any(name not in LIVE for name in changed):
            return False
        if self.finished or not self._thread.is_alive():
            return False

        def apply():
            if not self.trainer.history:
                return False
            self._apply(config, changed)
            return True
        return self.call(apply)

    def _apply(self, config: PlaygroundConfig, changed: list[str]):
        """In the training thread, between epochs: the new settings take hold."""
        run = config.run_config().resolved()
        trainer, epoch = self.trainer, len(self.trainer.history)
        trainer.reg, trainer.l1 = run.reg, run.l1
        trainer.batch_size = trainer.loader.batch_size = run.batch_size
        if {"optimizer", "momentum", "weight_decay"} & set(changed):  # a new rule, its
            self.optimizer = trainer.optimizer = build_optimizer(run, self.model.parameters())
        if {"optimizer", "momentum", "weight_decay", "lr", "lr_schedule", "warmup"} & set(
                changed):  # the schedule starts again, from the new rate, over what is left
            for group in self.optimizer.param_groups:
                group.pop("initial_lr", None)
                group["lr"] = run.lr
            remaining = dataclasses.replace(run, schedule_epochs=max(run.epochs - epoch, 1))
            trainer.scheduler = build_scheduler(remaining, self.optimizer)
        words = {"lr": "learning rate", "reg_rate": "regularization rate",
                 "batch_size": "batch size", "lr_schedule": "schedule"}
        self.live_changes.append(f"after epoch {epoch}: " + ", ".join(
            f"{words.get(k, k.replace('_', ' '))} {getattr(config, k)}" for k in changed))
        self.config = config
        self._publish(force=True)

    def neuron_player(self, layer: int, neuron: int) -> str:
        """The player page of one neuron's operations on the first training point."""
        from .neuron import neuron_player

        return self.call(lambda: neuron_player(self, layer, neuron))

    def stop(self, timeout: float = 5.0):
        """End the training thread and let go of everything the session holds."""
        if self._thread.is_alive():
            self._requests.put((None, None))
            self._thread.join(timeout)
        self.frame = None
        self._plane = None

    def latest(self, seen: int):
        """(version, frame) if a frame newer than ``seen`` exists, else None."""
        with self._lock:
            if self.version > seen and self.frame is not None:
                return self.version, self.frame
        return None


def _extent(points: np.ndarray) -> list[float]:
    """A square around the points, with a margin: [x0, x1, y0, y1]."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre, half = (lo + hi) / 2, float(max(hi - lo)) / 2 * 1.15 + 1e-3
    return [float(centre[0] - half), float(centre[0] + half),
            float(centre[1] - half), float(centre[1] + half)]


def _heat(values: np.ndarray) -> dict:
    """A neuron's or feature's values over the plane as bytes 0..255 (128 is 0)."""
    v = np.asarray(values, dtype=np.float64)
    scale = float(np.max(np.abs(v))) or 1.0
    return {"scale": scale, "data": _b64(np.round((v / scale + 1) * 127.5).astype(np.uint8))}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


def _round(a) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 6).tolist()

