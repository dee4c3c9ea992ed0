"""Training from Python in one call, and a finished run loaded back: ``fit`` and ``load_run``.

    run = cr.fit("digits", hidden=[100], epochs=20, out="runs/mine")
    run = cr.load_run("runs/mine")
    run.predict(X)          # class labels (N,) for raw features X (N, D)
    run.config, run.history, run.summary, run.model

Both use what ``chainrule train`` uses (``experiment.RunConfig``), so a run started from
Python and one started from the command line are the same thing on disk.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from .data import Standardize, input_features
from .engine import no_grad
from .errors import ChainruleError, ShapeError
from .experiment import RunConfig, build_model, config_of, read_checkpoint, run_training
from .train import REGRESSION_LOSSES


class Run:
    """A trained model with everything needed to use it and to read how it was trained.

    Attributes:
        config: the ``RunConfig`` it was trained with (defaults filled in).
        model: the network (an ``nn.MLP``), in evaluation mode.
        history: one dict per epoch (``epoch``, ``train_loss``, ``train_accuracy``,
            ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``).
        summary: final accuracies and losses (what ``summary.json`` holds), or {}.
        path: the run's folder, or None for a run kept in memory.
    """

    def __init__(self, config, model, scaler, history, summary=None, path=None):
        self.config, self.model, self.scaler = config, model, scaler
        self.history, self.summary = list(history), dict(summary or {})
        self.path = None if path is None else Path(path)
        self.model.eval()

    def scores(self, X) -> np.ndarray:
        """Class scores (N, C) for raw features ``X`` (N, D), standardised as in training
        (and turned into the run's input features, if it has them: D is then 2)."""
        X = np.asarray(X, dtype=np.float32)
        features = self.config.features
        expected = 2 if features else self.model.sizes[0]
        if X.ndim == 1 and X.shape[0] == expected:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != expected:
            raise ShapeError(f"predict: expected features of shape (N, {expected}), got "
                             f"{X.shape}")
        X = self.scaler.transform(X)
        with no_grad():
            return self.model(input_features(X, features) if features else X).data

    def predict(self, X) -> np.ndarray:
        """Class labels (N,) for raw features ``X`` (N, D); a regression's real outputs."""
        scores = self.scores(X)
        return scores[:, 0] if self.config.loss in REGRESSION_LOSSES else scores.argmax(axis=1)

    def __repr__(self):
        where = f" in {self.path}" if self.path else ""
        accuracy = self.summary.get("test_accuracy", self.summary.get("val_accuracy"))
        tail = f", accuracy {accuracy:.1%}" if accuracy is not None else ""
        return (f"<Run {self.config.dataset}: hidden {self.config.hidden}, "
                f"{len(self.history)} epochs{tail}{where}>")


def fit(dataset="digits", out=None, progress=None, **options) -> Run:
    """Train an MLP on the named data set and return the ``Run``.

    ``options`` are those of ``chainrule train`` with underscores (``hidden=[100]``,
    ``optimizer="sgd"``, ``lr=0.1``, ``epochs=20``, ``lr_schedule="cosine"``, ``seed=0``...);
    unset ones take the same defaults. With ``out`` the run is written there (a folder
    that holds another run is refused); ``progress`` as for ``Trainer``.
    """
    known = {f.name for f in dataclasses.fields(RunConfig)} - {"dataset", "out"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ChainruleError(f"fit: unknown option {', '.join(unknown)}; the options are "
                             + ", ".join(sorted(known)))
    config = RunConfig(dataset=dataset, out=None if out is None else str(out), **options)
    summary, trainer, scaler = run_training(config, progress=progress)
    return Run(RunConfig.from_dict(trainer.config), trainer.model, scaler, trainer.history,
               summary, out)


def load_run(path) -> Run:
    """Load a finished run: its folder (``model.crk``) or any of its checkpoint files."""
    file, state = read_checkpoint(path)
    config = config_of(state, file)
    folder = file.parent
    scaler = Standardize()
    if state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    else:  # a checkpoint saved mid-run: the statistics of the training split, refitted
        from .experiment import prepare_data

        scaler = prepare_data(config.resolved())[1]
    model = build_model(config, int(np.shape(state["model"]["0.weight"])[1]),
                        int(np.shape(state["model"][_last_weight(state["model"])])[0]))
    model.load_state_dict(state["model"])
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(config, model, scaler, _read_history(folder), summary, folder)


def _last_weight(weights: dict) -> str:
    return [name for name in weights if name.endswith("weight")][-1]


def _read_history(folder: Path) -> list[dict]:
    path = folder / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
            for row in rows]
