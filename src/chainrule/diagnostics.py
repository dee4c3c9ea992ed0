"""Watching a network train: dead ReLUs, saturated sigmoid and tanh units, gradient
norms and update-to-weight ratios, per layer and per epoch.

The lecture's warnings made measurable: a ReLU unit that is never active passes no
gradient and stops learning ("dead"); a sigmoid or tanh unit pinned near its limits has
a local gradient near zero ("saturated"); and the size of each update relative to the
weights (about 1e-3 is healthy) says whether the learning rate is sensible.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._io import atomic_write_text
from .nn import Linear, ReLU, Sigmoid, Tanh
from .train import Callback

HEALTHY_RATIO = (1e-4, 1e-2)  # update / weight norms outside this band get a warning
SATURATION = {Sigmoid: (0.05, 0.95), Tanh: (-0.95, 0.95)}
SATURATED_UNIT = 0.9  # a unit saturated on this fraction of examples counts as saturated
ALERT_FRACTION = 0.5  # warn when this fraction of a layer's units is dead or saturated
# Update sizes are judged only once the weights have left their initial values (the first
# steps move them fast, which is healthy), and only when a bad size persists for several
# epochs; a rate that a schedule or warm-up lowered on purpose is not called too small.
SETTLING_STEPS = 100
PERSISTENT_EPOCHS = 3


class DiagnosticsMonitor(Callback):
    """A trainer callback that records, per layer and per epoch: the fraction of dead
    ReLU units, the fraction of saturated sigmoid/tanh units, the mean gradient norm of
    each Linear layer's weight and its mean update-to-weight ratio.

    ``records`` holds one dict per epoch (the format ``plots.plot_diagnostics`` draws);
    ``warnings`` holds plain-language warnings as (epoch, text). With ``out_dir`` it
    writes ``diagnostics.json`` and ``diagnostics.png`` when training ends.
    """

    def __init__(self, out_dir=None):
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.records: list[dict] = []
        self.warnings: list[tuple[int, str]] = []
        self._warned: set[tuple[str, str]] = set()
        self._streaks: dict[tuple[str, str], int] = {}
        self._steps = 0
        self._handles = []

    # ----- kept in the trainer's checkpoint, so a resumed run keeps earlier epochs -------
    def state_dict(self):
        return {"records": json.dumps(self.records), "warnings": json.dumps(self.warnings),
                "warned": json.dumps(sorted(self._warned))}

    def load_state_dict(self, state):
        records, warnings, warned = (json.loads(state[k]) for k in
                                     ("records", "warnings", "warned"))
        if not (isinstance(records, list) and all(isinstance(r, dict) for r in records)):
            raise ValueError("diagnostics records must be a list of dicts")
        self.records = records
        self.warnings = [(int(epoch), str(text)) for epoch, text in warnings]
        self._warned = {(str(layer), str(kind)) for layer, kind in warned}

    # ----- set-up -------------------------------------------------------------------------
    def on_train_begin(self, trainer):
        self._linears = [(name, m) for name, m in trainer.model.named_modules()
                         if isinstance(m, Linear)]
        self._activations = [(name, m) for name, m in trainer.model.named_modules()
                             if isinstance(m, ReLU | Sigmoid | Tanh)]
        self._handles = [m.register_forward_hook(self._watch(name))
                         for name, m in self._activations]

    def _watch(self, name):
        def hook(module, inputs, output):
            if not module.training:
                return None  # only training batches count
            values = output.data.reshape(-1, output.shape[-1])
            stats = self._activation_stats[name]
            if isinstance(module, ReLU):
                active = (values > 0).any(axis=0)
                seen = stats["ever_active"]
                stats["ever_active"] = active if seen is None else seen | active
            else:
                low, high = SATURATION[type(module)]
                stats["saturated"] += ((values < low) | (values > high)).sum(axis=0)
                stats["examples"] += values.shape[0]
            return None

        return hook

    def on_epoch_begin(self, trainer, epoch):
        self._activation_stats = {}
        for name, _ in self._activations:
            self._activation_stats[name] = {"ever_active": None, "saturated": 0, "examples": 0}
        self._grad_norms = {name: [] for name, _ in self._linears}
        self._ratios = {name: [] for name, _ in self._linears}
        self._before = {}

    # ----- per step -----------------------------------------------------------------------
    def on_after_backward(self, trainer):
        for name, layer in self._linears:
            if layer.weight.grad is not None:
                self._grad_norms[name].append(float(np.linalg.norm(layer.weight.grad)))
            self._before[name] = layer.weight.data.copy()

    def on_step_end(self, trainer):
        self._steps += 1
        for name, layer in self._linears:
            weight = layer.weight.data
            norm = np.linalg.norm(weight)
            if norm > 0:
                change = np.linalg.norm(weight - self._before[name])
                self._ratios[name].append(float(change / norm))

    # ----- per epoch ----------------------------------------------------------------------
    def on_epoch_end(self, trainer, record):
        epoch = record["epoch"]
        layers = {}
        for name, m in self._activations:
            stats = self._activation_stats[name]
            entry = {"dead_fraction": None, "saturated_fraction": None,
                     "grad_norm": None, "update_ratio": None}
            if isinstance(m, ReLU) and stats["ever_active"] is not None:
                entry["dead_fraction"] = float(1 - stats["ever_active"].mean())
            elif stats["examples"]:
                per_unit = np.asarray(stats["saturated"]) / stats["examples"]
                entry["saturated_fraction"] = float((per_unit >= SATURATED_UNIT).mean())
            layers[f"{name} ({type(m).__name__.lower()})"] = entry
        for name, _ in self._linears:
            grads, ratios = self._grad_norms[name], self._ratios[name]
            layers[f"{name} (linear)"] = {
                "dead_fraction": None, "saturated_fraction": None,
                "grad_norm": float(np.mean(grads)) if grads else None,
                "update_ratio": float(np.mean(ratios)) if ratios else None}
        self.records.append({"epoch": epoch, "layers": layers})
        group = trainer.optimizer.param_groups[0]
        full_rate = record.get("lr", group["lr"]) >= group.get("initial_lr", group["lr"])
        self._warn(epoch, layers, settled=self._steps >= SETTLING_STEPS, full_rate=full_rate)

    def _persists(self, layer, kind, now) -> bool:
        streak = self._streaks.get((layer, kind), 0) + 1 if now else 0
        self._streaks[(layer, kind)] = streak
        return streak >= PERSISTENT_EPOCHS

    def _warn(self, epoch, layers, settled=True, full_rate=True):
        """Add a warning the first time each layer shows each kind of trouble."""
        for layer, entry in layers.items():
            messages = {}
            dead, saturated, ratio = (entry["dead_fraction"], entry["saturated_fraction"],
                                      entry["update_ratio"])
            if dead is not None and dead >= ALERT_FRACTION:
                messages["dead"] = (f"layer {layer}: {dead:.0%} of the ReLU units never fired "
                                "this epoch; dead units pass no gradient and stop learning "
                                "(try a smaller learning rate or leaky_relu)")
            if saturated is not None and saturated >= ALERT_FRACTION:
                messages["saturated"] = (f"layer {layer}: {saturated:.0%} of the units are "
                                "saturated; their local gradient is near zero, so the layers below "
                                "barely learn (try relu, or smaller weights or inputs)")
            large = settled and ratio is not None and ratio > HEALTHY_RATIO[1]
            small = settled and full_rate and ratio is not None and ratio < HEALTHY_RATIO[0]
            if self._persists(layer, "large", large) | self._persists(layer, "small", small):
                size = "large" if large else "small"
                hint = "lower" if size == "large" else "raise"
                messages["ratio"] = (f"layer {layer}: updates are {ratio:.1e} of the weights, "
                                f"far from the healthy ~1e-3; the learning rate looks too "
                                f"{size} ({hint} it)")
            for kind, text in messages.items():
                if (layer, kind) not in self._warned:
                    self._warned.add((layer, kind))
                    self.warnings.append((epoch, text))

    def on_train_end(self, trainer):
        unfinished = getattr(trainer, "diverged_at", None)
        if unfinished and (not self.records or self.records[-1]["epoch"] < unfinished["epoch"]):
            self.on_epoch_end(trainer, {"epoch": unfinished["epoch"]})  # what led up to it
        for handle in self._handles:
            handle.remove()
        if self.out_dir is None or not self.records:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out_dir / "diagnostics.json", json.dumps(
            {"records": self.records, "warnings": self.warnings}, indent=1) + "\n")
        try:
            from .plots import plot_diagnostics
        except ImportError:  # pragma: no cover
            return
        plot_diagnostics(self.records, self.out_dir / "diagnostics.png")
