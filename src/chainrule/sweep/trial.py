"""One trial of a sweep, as it runs on a worker: an ordinary training run in its own folder.

The folder holds what ``chainrule train --out`` writes (summary.json, history.csv,
checkpoint.crk, best.crk, model.crk) plus ``trial.json``, the trial's outcome. A trial
whose trial.json says it finished is not run again; one with a checkpoint but no
trial.json (its worker died, or the sweep was stopped) resumes from that checkpoint.
Trials see the training and validation splits only: the test split is kept for the one
configuration the sweep picks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
import traceback
from pathlib import Path

from .._io import atomic_write_text
from ..data import Dataset
from ..errors import ChainruleError
from ..experiment import (
    MODEL,
    RunConfig,
    build_model,
    build_optimizer,
    build_scheduler,
    prepare_data,
)
from ..serialization import save
from ..train import CHECKPOINT, Trainer, TrainingDiverged

TRIAL = "trial.json"
# A trial's checkpoint interval: a killed worker costs at most this much training again.
CHECKPOINT_SECONDS = 10.0
# What results.csv reports for each trial, besides its searched values.
OUTCOME_FIELDS = ("status", "train_accuracy", "val_accuracy", "final_loss", "epochs",
                  "seconds", "error")


@functools.lru_cache(maxsize=4)
def _standardized_data(dataset, data_dir, seed):
    """Load a data set once per worker process (by name, not shipped with each task)."""
    config = RunConfig(dataset=dataset, data_dir=data_dir, seed=seed)
    data, scaler = prepare_data(config)
    return data, scaler


def load_trial_data(config: RunConfig):
    """(Dataset without its test split, the fitted scaler) for ``config``."""
    data, scaler = _standardized_data(config.dataset, config.data_dir, config.seed)
    without_test = Dataset(data.name, data.X_train, data.y_train, data.X_val, data.y_val,
                           None, None, data.num_classes, data.image_shape)
    return without_test, scaler


def finished_outcome(folder) -> dict | None:
    """The outcome recorded in ``folder/trial.json`` if the trial finished (trained to
    the end or diverged), else None."""
    path = Path(folder) / TRIAL
    if not path.exists():
        return None
    try:
        outcome = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return outcome if outcome.get("status") in ("ok", "diverged") else None


def write_outcome(folder, outcome: dict):
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(folder) / TRIAL, json.dumps(outcome, indent=2) + "\n")


@contextlib.contextmanager
def one_blas_thread():
    """Pin BLAS to one thread while a trial runs: the workers are the parallelism."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the worker's environment (OMP_NUM_THREADS=1) still applies
        yield
        return
    with threadpool_limits(limits=1):
        yield


def run_trial(trial: dict) -> dict:
    """Train one trial; returns its outcome (never raises for a failed trial).

    ``trial``: {"index": int, "config": RunConfig as a dict, "dir": its folder,
    optionally "checkpoint_every": seconds between checkpoints (None: every epoch)}. The
    outcome: {"index", "status" ("ok", "diverged" or "failed"), "train_accuracy",
    "val_accuracy", "final_loss", "epochs", "seconds", "error"}.
    """
    folder = Path(trial["dir"])
    done = finished_outcome(folder)
    if done is not None:
        return done
    started = time.perf_counter()
    outcome = {"index": trial["index"], "status": "ok", "error": ""}
    try:
        with one_blas_thread():
            summary = train_in_folder(RunConfig.from_dict(trial["config"]), folder,
                                      trial.get("checkpoint_every"))
        outcome.update({k: summary[k] for k in ("train_accuracy", "val_accuracy",
                                                "final_loss", "epochs")})
    except TrainingDiverged as e:
        outcome.update(status="diverged", error=str(e))
    except Exception as e:  # recorded with the trial; the sweep goes on
        kind = "" if isinstance(e, ChainruleError) else f"{type(e).__name__}: "
        outcome.update(status="failed", error=kind + str(e),
                       traceback=traceback.format_exc(limit=5))
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    write_outcome(folder, outcome)
    return outcome


def train_in_folder(config: RunConfig, folder: Path, checkpoint_every=None) -> dict:
    """``chainrule train --out folder`` for ``config``, resuming a checkpoint left there,
    without pictures and without the test split; returns the run's summary.
    ``checkpoint_every``: seconds between checkpoints (None: after every epoch)."""
    config = dataclasses.replace(config, out=str(folder)).resolved()
    data, scaler = load_trial_data(config)
    model = build_model(config, data.num_features, data.num_classes)
    optimizer = build_optimizer(config, model.parameters())
    trainer = Trainer(model, optimizer, loss=config.loss,
                      scheduler=build_scheduler(config, optimizer), reg=config.reg,
                      epochs=config.epochs, batch_size=config.batch_size,
                      patience=config.patience, seed=config.seed, out_dir=folder,
                      progress=False, config=config.to_dict(),
                      checkpoint_every=checkpoint_every)
    summary = trainer.fit(data, resume=(folder / CHECKPOINT).exists())
    summary["dataset"] = repr(data)
    save({"config": config.to_dict(), "model": model.state_dict(),
          "scaler": scaler.state_dict()}, folder / MODEL)
    return summary
