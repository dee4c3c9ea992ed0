"""A training run described by a ``RunConfig``: data, model, optimizer and schedule built
from plain options, trained by ``Trainer``, with its reports and pictures written out.
This is what ``chainrule train`` and ``chainrule evaluate`` run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from . import optim
from ._io import folder_lock
from .data import Standardize, catalog, input_features, load_dataset, points_dataset
from .data.plane import FEATURES
from .engine import no_grad
from .errors import ChainruleError, CheckpointError
from .nn import ACTIVATIONS, MLP
from .optim import lr_scheduler
from .serialization import load, save
from .state_check import check_like
from .train import BEST, CHECKPOINT, LOSSES, REGRESSION_LOSSES, Trainer, TrainingDiverged

IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
MODEL = "model.crk"

GENERATED_DATASETS = tuple(catalog.GENERATED)  # made from the seed, no files
BUNDLED_DATASETS = tuple(catalog.BUNDLED)  # shipped inside scikit-learn

# Options left unset take these per-data-set values: tiny 2-D sets need many short epochs
# and a larger step (``lr_scale`` times the optimizer's rate); image sets fewer epochs.
DATASET_DEFAULTS = {
    "spiral": {"epochs": 300, "lr_scale": 10},
    "moons": {"epochs": 200, "lr_scale": 10},
    "circles": {"epochs": 200, "lr_scale": 10},
    "xor": {"epochs": 200, "lr_scale": 10},
    "iris": {"epochs": 150, "lr_scale": 10},
    "csv": {"epochs": 200, "lr_scale": 10},  # your own 2-D points (--data)
    "digits": {"epochs": 40, "lr_scale": 1},
    "mnist": {"epochs": 15, "lr_scale": 1},
    "fashion-mnist": {"epochs": 15, "lr_scale": 1},
    "cifar10": {"epochs": 20, "lr_scale": 1},
}
# The learning rate each optimizer starts from on standardised image data: plain SGD needs
# a step about a hundred times larger than the adaptive methods, which divide by the
# gradient's running size.
class OptimizerChoice(NamedTuple):
    lr: float  # the default learning rate, before the data set's scale
    build: Callable  # build(params, config) -> the optimizer


# Each optimizer by its command-line name. A name exists only with its builder and its
# default rate, so options, help and construction cannot disagree.
OPTIMIZERS = {
    "sgd": OptimizerChoice(1e-1, lambda params, c: optim.SGD(
        params, lr=c.lr, weight_decay=c.weight_decay)),
    "momentum": OptimizerChoice(1e-2, lambda params, c: optim.SGD(
        params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)),
    "nesterov": OptimizerChoice(1e-2, lambda params, c: optim.SGD(
        params, lr=c.lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay)),
    "rmsprop": OptimizerChoice(1e-3, lambda params, c: optim.RMSprop(
        params, lr=c.lr, weight_decay=c.weight_decay)),
    "adam": OptimizerChoice(1e-3, lambda params, c: optim.Adam(
        params, lr=c.lr, weight_decay=c.weight_decay)),
    "adamw": OptimizerChoice(1e-3, lambda params, c: optim.AdamW(
        params, lr=c.lr, weight_decay=c.weight_decay)),
    "adagrad": OptimizerChoice(1e-2, lambda params, c: optim.Adagrad(
        params, lr=c.lr, weight_decay=c.weight_decay)),
}
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")


def default_lr(optimizer: str, dataset: str) -> float:
    """The learning rate used when none is given: the optimizer's, scaled for the data set."""
    scale = DATASET_DEFAULTS.get(dataset, {}).get("lr_scale", 1)
    return OPTIMIZERS[optimizer].lr * scale


@dataclass
class RunConfig:
    """Every option of a training run; ``None`` means the data set's default.

    ``data``: a CSV file of 2-D points (``x1,x2,label[,split]``) to train on instead of a
    named data set (``dataset`` is then "csv"). ``features``: the inputs computed from
    2-D points (names of ``data.plane.FEATURES``; None: the coordinates). ``activation``:
    one name, or a list of one per hidden layer. ``l1``: the L1 penalty's lambda."""

    dataset: str = "digits"
    data_dir: str | None = None
    hidden: list[int] = field(default_factory=lambda: [100])
    activation: str | list[str] | None = "relu"
    dropout: float = 0.0
    loss: str = "softmax"
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    reg: float = 0.0
    lr_schedule: str = "none"
    warmup: int = 0
    epochs: int | None = None
    schedule_epochs: int | None = None
    batch_size: int = 64
    patience: int | None = None
    seed: int = 0
    out: str | None = None
    data: str | None = None
    features: list[str] | None = None
    l1: float = 0.0

    def resolved(self) -> RunConfig:
        """This config with the data set's defaults filled in and every value checked."""
        defaults = DATASET_DEFAULTS.get(self.dataset, {})
        epochs = self.epochs if self.epochs is not None else defaults.get("epochs", 20)
        config = dataclasses.replace(
            self, lr=self.lr if self.lr is not None else default_lr(self.optimizer, self.dataset),
            epochs=epochs,
            schedule_epochs=self.schedule_epochs if self.schedule_epochs is not None else epochs)
        config.validate()
        return config

    def validate(self):
        def positive(name, value, kind=int):
            if not isinstance(value, kind) or value <= 0:
                raise ChainruleError(f"--{name.replace('_', '-')} must be a positive "
                                     f"{'integer' if kind is int else 'number'}, got {value}")

        for name, value in (("lr", self.lr), ("momentum", self.momentum),
                            ("dropout", self.dropout), ("weight_decay", self.weight_decay),
                            ("reg", self.reg), ("l1", self.l1)):
            if isinstance(value, float) and not math.isfinite(value):
                raise ChainruleError(f"--{name.replace('_', '-')} must be a finite number, "
                                     f"got {value}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ChainruleError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.out is not None and not str(self.out).strip():
            raise ChainruleError("--out is empty; give the folder for the run's files (an "
                                 "empty name would write them over the current folder's)")
        for size in self.hidden:
            positive("hidden", size)
        positive("epochs", self.epochs)
        if self.schedule_epochs is not None:
            positive("schedule_epochs", self.schedule_epochs)
            if self.lr_schedule == "cosine" and self.epochs > self.schedule_epochs:
                raise ChainruleError(
                    f"--lr-schedule cosine brings the learning rate down to 0 over "
                    f"{self.schedule_epochs} epochs (--schedule-epochs), so epochs after "
                    f"that would not train; for {self.epochs} epochs start a new run with "
                    f"--epochs {self.epochs}")
        positive("batch_size", self.batch_size)
        positive("lr", self.lr, (int, float))
        if self.patience is not None:
            positive("patience", self.patience)
        activations = self.activation if isinstance(self.activation, list) else [
            self.activation]
        if isinstance(self.activation, list) and len(activations) != len(self.hidden):
            raise ChainruleError(f"--activation: {len(activations)} names for "
                                 f"{len(self.hidden)} hidden layers; give one name, or one "
                                 "per hidden layer")
        choices = [*(("activation", a, [*ACTIVATIONS, None]) for a in activations),
                   ("loss", self.loss, list(LOSSES)),
                   ("optimizer", self.optimizer, list(OPTIMIZERS)),
                   ("lr_schedule", self.lr_schedule, list(SCHEDULES)),
                   *(("features", f, list(FEATURES)) for f in self.features or ())]
        for name, value, allowed in choices:
            if value not in allowed:
                raise ChainruleError(f"--{name.replace('_', '-')} {value!r} is not one of "
                                     + ", ".join(str(a) for a in allowed if a is not None))
        for name, value in (("dropout", self.dropout), ("momentum", self.momentum)):
            if not 0 <= value < 1:
                raise ChainruleError(f"--{name} must be in [0, 1), got {value}")
        if self.features is not None and (not self.features
                                          or len(set(self.features)) != len(self.features)):
            raise ChainruleError("--features: give distinct feature names, at least one")
        if (self.data is None) != (self.dataset != "csv"):
            raise ChainruleError("--data FILE.csv trains on your own points; give it, or a "
                                 "--dataset, not both" if self.data is not None else
                                 "the csv data set needs --data FILE.csv")
        if self.loss in REGRESSION_LOSSES and self.data is None:
            raise ChainruleError(f"--loss {self.loss} is a regression loss: give --data "
                                 "FILE.csv with a real-valued target in its third column")
        for name, value in (("weight_decay", self.weight_decay), ("reg", self.reg),
                            ("l1", self.l1), ("warmup", self.warmup)):
            if value < 0:
                raise ChainruleError(f"--{name.replace('_', '-')} must not be negative, "
                                     f"got {value}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Bytes per parameter while training: the weights, their gradient, up to two optimizer
# slots (Adam), the best weights kept for early stopping and the checkpoint being written.
_COPIES_PER_PARAMETER = 6
# Activations per unit of a layer: the output, the saved input of the next op and its
# gradient; evaluation runs batches of this many rows.
_COPIES_PER_ACTIVATION, _EVALUATION_BATCH = 4, 2048


def estimate_memory(config: RunConfig, num_features: int, num_classes: int) -> int:
    """Bytes a run of ``config`` needs for its model (float32 parameters, gradients,
    optimizer state, saved copies) and its activations (training and evaluation
    batches); an estimate made before anything is allocated."""
    sizes = [num_features, *config.hidden, num_classes]
    parameters = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    rows = max(config.batch_size, _EVALUATION_BATCH)
    activations = rows * sum(sizes) * _COPIES_PER_ACTIVATION
    return 4 * (parameters * _COPIES_PER_PARAMETER + activations)


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(config: RunConfig, num_features: int, num_classes: int, max_memory=None):
    """Refuse a model that cannot fit in ``max_memory`` bytes (default: this machine's
    RAM) before allocating it."""
    limit = physical_memory() if max_memory is None else max_memory
    needed = estimate_memory(config, num_features, num_classes)
    if limit is not None and needed > limit:
        raise ChainruleError(
            f"the model ({num_features} inputs, hidden {config.hidden}, {num_classes} "
            f"classes) needs about {_format_bytes(needed)} to train, more than the "
            f"{_format_bytes(limit)} allowed; use smaller --hidden sizes, or pass "
            "--max-memory SIZE if the machine really has the memory")


def _format_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def build_model(config: RunConfig, num_features: int, num_classes: int) -> MLP:
    """The MLP of ``config`` for ``num_features`` inputs (after ``config.features``) and
    ``num_classes`` outputs (1 for a regression)."""
    return MLP(num_features, config.hidden, num_classes, activation=config.activation,
               dropout=config.dropout, seed=config.seed)


# name -> builder(optimizer, epochs after warm-up): the per-epoch schedule, or None.
SCHEDULES = {
    "none": lambda opt, epochs: None,
    "step": lambda opt, epochs: lr_scheduler.StepLR(opt, step_size=max(epochs // 3, 1),
                                                    gamma=0.1),
    "exponential": lambda opt, epochs: lr_scheduler.ExponentialLR(opt,
                                                                  gamma=0.01 ** (1 / epochs)),
    "cosine": lambda opt, epochs: lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
    "plateau": lambda opt, epochs: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5),
}


def build_optimizer(config: RunConfig, params):
    return OPTIMIZERS[config.optimizer].build(list(params), config)


def build_scheduler(config: RunConfig, optimizer):
    """The per-epoch schedule, preceded by ``warmup`` epochs of linear warm-up.

    Its shape depends on ``config.schedule_epochs`` (the run's first ``epochs``), never on
    ``epochs`` itself: a run extended later keeps the rates it has already used.
    """
    span = config.schedule_epochs if config.schedule_epochs is not None else config.epochs
    main = SCHEDULES[config.lr_schedule](optimizer, max(span - config.warmup, 1))
    if not config.warmup:
        return main
    if isinstance(main, lr_scheduler.ReduceLROnPlateau):
        raise ChainruleError("--warmup cannot be combined with --lr-schedule plateau")
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=config.warmup)
    if main is None:
        return warmup
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[config.warmup])


def prepare_data(config: RunConfig, scaler_state=None):
    """The data set with features standardised by statistics of the training split (or
    by the saved ``scaler_state`` of a trained model), then ``config.features`` computed
    from the standardised points."""
    if config.data is not None:
        data = points_dataset(config.data, regression=config.loss in REGRESSION_LOSSES,
                              seed=config.seed)
    else:
        data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
    scaler = Standardize()
    if scaler_state is None:
        scaler.fit(data.X_train)
    else:
        try:
            scaler.load_state_dict(scaler_state)
            if scaler.mean.shape != (data.num_features,):
                raise ChainruleError(f"it has {scaler.mean.size} features, the data "
                                     f"{data.num_features}")
        except Exception as e:  # noqa: BLE001 - the saved state may hold anything
            raise CheckpointError(f"the saved scaler does not fit {config.dataset} "
                                  f"({type(e).__name__}: {e!s:.200})") from None
    data.X_train, data.X_val = scaler.transform(data.X_train), scaler.transform(data.X_val)
    if data.X_test is not None:
        data.X_test = scaler.transform(data.X_test)
    if config.features is not None:
        if data.num_features != 2:
            raise ChainruleError(f"--features are computed from 2-D points; {config.dataset} "
                                 f"has {data.num_features} features")
        for split in ("train", "val", "test"):
            X = getattr(data, f"X_{split}")
            if X is not None:
                setattr(data, f"X_{split}", input_features(X, config.features))
    return data, scaler


RUN_FILES = (CHECKPOINT, BEST, MODEL, "summary.json", "history.csv", "curves.png",
             "boundary.png", "templates.png", "diagnostics.png", "diagnostics.json")


def new_run_folder(dataset: str, root="runs") -> Path:
    """A folder ``root/<dataset>-<n>`` that did not exist before (created here, so two runs
    started at once never share one)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = root / f"{dataset}-{n}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def earlier_run_files(out) -> list[str]:
    """The files of a training run already in the folder ``out``."""
    out = Path(out)
    return [name for name in RUN_FILES if (out / name).exists()]


def train(config: RunConfig, resume=False, progress=None, callbacks=(), replace=False,
          compile=True, max_memory=None) -> dict:
    """Run ``config`` and write its results into ``config.out`` (if set); returns the
    summary. See ``run_training``."""
    return run_training(config, resume, progress, callbacks, replace, compile, max_memory)[0]


def run_training(config: RunConfig, resume=False, progress=None, callbacks=(), replace=False,
                 compile=True, max_memory=None):
    """Train ``config``; returns (summary, trainer, scaler).

    With ``resume``, continue the run saved in ``config.out`` with its own options; a
    larger ``config.epochs`` extends it (the schedule keeps its span, so the numbers are
    those of one uninterrupted run of that length with the same ``schedule_epochs``).
    Without it, a folder that holds an earlier run is refused, or with ``replace`` its
    files are deleted first, so no picture of the earlier run stays beside the new ones.
    If training diverges, the pictures of the epochs before are still drawn. ``compile``:
    compile the training step (same numbers, faster; see ``cr.compile``). A model that
    would need more than ``max_memory`` bytes (default: the machine's RAM) is refused
    before it is built. The run's folder is locked while it runs: a second run on it
    fails at once.
    """
    if resume:  # the saved options, but the folder as given now (it may have moved)
        config = resumed_config(config)
    config = config.resolved()
    fresh = not resume and config.out is not None
    if fresh and earlier_run_files(config.out) and not replace:  # refused, nothing touched
        raise ChainruleError(
            f"{config.out} already holds a run "
            f"({', '.join(earlier_run_files(config.out)[:3])}); continue it with --resume, "
            f"or choose a new --out (leave --out out for a fresh folder under runs/)")
    lock = folder_lock(config.out) if config.out is not None else contextlib.nullcontext()
    with lock:  # the run's folder is its own until every file is written
        if fresh:  # replace: the earlier run's files go, so no picture of it stays
            for name in earlier_run_files(config.out):
                (Path(config.out) / name).unlink()
        return _train(config, resume, progress, callbacks, compile, max_memory)


def _train(config, resume, progress, callbacks, compile, max_memory):
    data, scaler = prepare_data(config)
    check_memory(config, data.num_features, data.num_classes, max_memory)
    model = build_model(config, data.num_features, data.num_classes)
    optimizer = build_optimizer(config, model.parameters())
    trainer = Trainer(model, optimizer, loss=config.loss,
                      scheduler=build_scheduler(config, optimizer), reg=config.reg,
                      epochs=config.epochs, batch_size=config.batch_size,
                      patience=config.patience, seed=config.seed, out_dir=config.out,
                      progress=progress, callbacks=callbacks, config=config.to_dict(),
                      compile=compile, l1=config.l1)
    try:
        summary = trainer.fit(data, resume=resume)
    except TrainingDiverged as e:
        if config.out is None:
            raise
        unfinished = dict(getattr(trainer, "diverged_at", None) or {})
        history = trainer.history + ([{**unfinished, "val_loss": None, "val_accuracy": None}]
                                     if unfinished else [])
        drawn = write_pictures(Path(config.out), model, data, history, scaler=scaler,
                               config=config, diverged=True)
        watched = Path(config.out) / "diagnostics.png"
        if any(getattr(cb, "out_dir", None) for cb in callbacks) and watched.exists():
            drawn.append(str(watched))
        if drawn:
            names = " and ".join(Path(p).name for p in drawn)
            verb = "shows" if len(drawn) == 1 else "show"
            raise TrainingDiverged(f"{e}; {names} in {config.out} {verb} the run up to "
                                   "there") from None
        raise
    summary["dataset"] = repr(data)
    if config.out is not None:
        out = Path(config.out)
        trainer.check_finite("at the end of training")  # never saved as "the model"
        save({"config": config.to_dict(), "model": model.state_dict(),
              "scaler": scaler.state_dict()}, out / MODEL)
        summary["pictures"] = write_pictures(out, model, data, trainer.history,
                                             scaler=scaler, config=config)
        if not summary["pictures"]:
            summary["note"] = 'no pictures: matplotlib is missing (pip install "chainrule[plot]")'
        trainer.write_summary(summary)  # again, now with the pictures
    return summary, trainer, scaler


def resumed_config(config: RunConfig) -> RunConfig:
    """The options saved in ``config.out``, with ``config.epochs`` (if given) as the new
    length; the schedule keeps the span it started with."""
    state = _checkpoint_state(config.out)
    path = Path(config.out) / CHECKPOINT
    saved = config_of(state, path)  # every value checked: a damaged file is one clear line
    if saved.schedule_epochs is None:  # a run saved before schedules had their own span
        saved.schedule_epochs = saved.epochs
    epochs = saved.epochs if config.epochs is None else config.epochs
    finished = state.get("epoch")
    if isinstance(finished, bool) or not isinstance(finished, int | np.integer) or finished < 0:
        raise CheckpointError(f"cannot resume from {path}: its epoch {finished!r:.40} is not "
                              "a count of finished epochs")
    finished = int(finished)
    if isinstance(epochs, int) and epochs < finished:
        raise ChainruleError(f"the run in {config.out} has already finished {finished} epochs; "
                             f"--epochs {epochs} would not continue it")
    return dataclasses.replace(saved, out=config.out, epochs=epochs)


@np.errstate(all="ignore")  # a model of huge weights is drawn as it is, without warnings
def write_pictures(out: Path, model, data, history, scaler=None, config=None,
                   diverged=False) -> list[str]:
    """curves.png always; boundary.png for 2-D data; templates.png for images (none
    without matplotlib, an optional extra). For a run that ``diverged`` only the curves."""
    if importlib.util.find_spec("matplotlib") is None or not history:
        return []
    from . import plots

    title = (f"Training curves: diverged in epoch {history[-1]['epoch']}" if diverged
             else None)
    written = [plots.plot_curves(history, out / "curves.png", title=title)]
    if diverged:
        return [str(written[0])]
    in_the_plane = config is None or config.features in (None, ["x1", "x2"])
    if data.num_features == 2 and not data.regression and in_the_plane:
        written.append(plots.plot_boundary(lambda X: predict(model, X), data.X_train,
                                           data.y_train, out / "boundary.png",
                                           title=f"{data.name}: decision regions"))
    if data.image_shape is not None:
        first = model.linear_layers()[0].weight.data
        linear = len(model.linear_layers()) == 1  # one row per class: a template per class
        titles = class_names(data) if linear else None
        written.append(plots.plot_templates(
            first, data.image_shape, out / "templates.png", titles=titles,
            title="Class templates: the linear classifier's weights" if linear else None))
    return [str(p) for p in written]


def predict(model, X):
    """Class labels (N,) for features X (N, D), in evaluation mode."""
    with no_grad():
        model.eval()
        return model(X).data.argmax(axis=1)


CLASS_NAMES = {
    "fashion-mnist": ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                      "sneaker", "bag", "boot"],
    "cifar10": ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"],
}


def class_names(data) -> list[str]:
    """A short name per class: the data set's own, else the class index."""
    names = CLASS_NAMES.get(data.name)
    return list(names) if names else [str(c) for c in range(data.num_classes)]


def _checkpoint_state(out) -> dict:
    if out is None:
        raise ChainruleError("--resume needs --out, the folder of the run to continue")
    path = Path(out) / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"cannot resume: no checkpoint at {path} (a run stopped "
                              "before its first epoch ended leaves none); start the run "
                              "again without --resume")
    return load(path)


def config_of(state, path) -> RunConfig:
    """The RunConfig a checkpoint or model file was made with, checked."""
    config = state.get("config") if isinstance(state, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds no run configuration")
    try:
        checked = RunConfig.from_dict(config)
        checked.resolved()  # every value checked; the original keeps its None defaults
    except ChainruleError as e:
        raise CheckpointError(f"{path} holds an invalid run configuration: {e}") from None
    except Exception as e:  # noqa: BLE001 - values of any type may be in the file
        raise CheckpointError(f"{path} holds an invalid run configuration "
                              f"({type(e).__name__}: {e!s:.200})") from None
    return checked


def saved_config(out) -> RunConfig:
    """The checked options of the run saved in the folder ``out``."""
    return config_of(_checkpoint_state(out), Path(out) / CHECKPOINT)


def read_checkpoint(path) -> tuple[Path, dict]:
    """The file ``path`` names (a folder: its ``model.crk``) and its contents, which must be
    those of a training run: a model and the options that built it."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL).exists():
            found = [n for n in (CHECKPOINT, BEST) if (path / n).exists()]
            hint = (f"; give a checkpoint file instead, e.g. {path / found[0]}" if found
                    else "")
            raise CheckpointError(f"no {MODEL} in {path} (a run writes it when it "
                                  f"finishes){hint}")
        path = path / MODEL
    elif not path.exists():
        raise CheckpointError(f"no such checkpoint or run folder: {path}")
    state = load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is a chainrule checkpoint but not one of a training "
                              "run (it has no model)")
    if "config" not in state:  # best.crk of an older run: the options are beside it
        for name in (MODEL, CHECKPOINT):
            sibling = path.parent / name
            if sibling != path and sibling.exists():
                state = {**state, "config": load(sibling)["config"]}
                break
        else:
            raise CheckpointError(f"{path} does not say which options built its model")
    return path, state


def data_file(name, checkpoint: Path):
    """A run's ``--data`` file: as named (relative to here), else the file of that name
    beside the checkpoint (a run folder, or an export, moved together with its data)."""
    if name is None or Path(name).exists():
        return name
    beside = checkpoint.parent / Path(name).name
    return str(beside) if beside.exists() else name


def evaluate(checkpoint, data_dir=None) -> dict:
    """Re-evaluate the model in ``checkpoint`` (a file: ``model.crk``, ``best.crk``,
    ``checkpoint.crk`` or any checkpoint of a run; a folder: its ``model.crk``) on every
    split of its data set; returns {split: {"loss", "accuracy"}}."""
    path, state = read_checkpoint(checkpoint)
    config = config_of(state, path)
    if data_dir is not None:
        config.data_dir = data_dir
    config.data = data_file(config.data, path)
    config = config.resolved()
    try:
        data, _ = prepare_data(config, state.get("scaler"))
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    check_memory(config, data.num_features, data.num_classes)
    model = build_model(config, data.num_features, data.num_classes)
    weights = state.get("model")
    try:
        check_like(weights, model.state_dict(), "['model']")
        model.load_state_dict(weights)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path}: its weights do not fit the model "
                              f"({type(e).__name__}: {e!s:.200})") from None
    trainer = Trainer(model, build_optimizer(config, model.parameters()), loss=config.loss,
                      progress=False)
    results = {}
    for split in ("train", "val", "test"):
        X = getattr(data, f"X_{split}")
        if X is not None:
            loss, accuracy = trainer.evaluate(X, getattr(data, f"y_{split}"))
            results[split] = {"loss": loss, "accuracy": accuracy}
    return results
