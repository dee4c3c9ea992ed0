"""A training run described by a ``RunConfig``: data, model, optimizer and schedule built
from plain options, trained by ``Trainer``, with its reports and pictures written out.
This is what ``chainrule train`` and ``chainrule evaluate`` run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import optim
from ._io import folder_lock
from .data import Standardize, load_dataset
from .engine import no_grad
from .errors import ChainruleError, CheckpointError
from .nn import ACTIVATIONS, MLP
from .optim import lr_scheduler
from .serialization import load, save
from .state_check import check_like
from .train import CHECKPOINT, LOSSES, Trainer

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "exponential", "cosine", "plateau")
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
MODEL = "model.crk"

# Options left unset take these per-data-set values: tiny 2-D sets need many short epochs
# and a larger step; image sets fewer epochs.
DATASET_DEFAULTS = {
    "spiral": {"epochs": 300, "lr": 1e-2},
    "moons": {"epochs": 200, "lr": 1e-2},
    "circles": {"epochs": 200, "lr": 1e-2},
    "xor": {"epochs": 200, "lr": 1e-2},
    "iris": {"epochs": 150, "lr": 1e-2},
    "digits": {"epochs": 40, "lr": 1e-3},
    "mnist": {"epochs": 15, "lr": 1e-3},
    "fashion-mnist": {"epochs": 15, "lr": 1e-3},
    "cifar10": {"epochs": 20, "lr": 1e-3},
}


@dataclass
class RunConfig:
    """Every option of a training run; ``None`` means the data set's default."""

    dataset: str = "digits"
    data_dir: str | None = None
    hidden: list[int] = field(default_factory=lambda: [100])
    activation: str | None = "relu"
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
    batch_size: int = 64
    patience: int | None = None
    seed: int = 0
    out: str | None = None

    def resolved(self) -> RunConfig:
        """This config with the data set's defaults filled in and every value checked."""
        defaults = DATASET_DEFAULTS.get(self.dataset, {})
        config = dataclasses.replace(
            self, lr=self.lr if self.lr is not None else defaults.get("lr", 1e-3),
            epochs=self.epochs if self.epochs is not None else defaults.get("epochs", 20))
        config.validate()
        return config

    def validate(self):
        def positive(name, value, kind=int):
            if not isinstance(value, kind) or value <= 0:
                raise ChainruleError(f"--{name.replace('_', '-')} must be a positive "
                                     f"{'integer' if kind is int else 'number'}, got {value}")

        for name, value in (("lr", self.lr), ("momentum", self.momentum),
                            ("dropout", self.dropout), ("weight_decay", self.weight_decay),
                            ("reg", self.reg)):
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
        positive("batch_size", self.batch_size)
        positive("lr", self.lr, (int, float))
        if self.patience is not None:
            positive("patience", self.patience)
        choices = (("activation", self.activation, [*ACTIVATIONS, None]),
                   ("loss", self.loss, list(LOSSES)), ("optimizer", self.optimizer, OPTIMIZERS),
                   ("lr_schedule", self.lr_schedule, SCHEDULES))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ChainruleError(f"--{name.replace('_', '-')} {value!r} is not one of "
                                     + ", ".join(str(a) for a in allowed if a is not None))
        for name, value in (("dropout", self.dropout), ("momentum", self.momentum)):
            if not 0 <= value < 1:
                raise ChainruleError(f"--{name} must be in [0, 1), got {value}")
        for name, value in (("weight_decay", self.weight_decay), ("reg", self.reg),
                            ("warmup", self.warmup)):
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
    return MLP(num_features, config.hidden, num_classes, activation=config.activation,
               dropout=config.dropout, seed=config.seed)


def build_optimizer(config: RunConfig, params):
    params, lr, wd = list(params), config.lr, config.weight_decay
    match config.optimizer:
        case "sgd":
            return optim.SGD(params, lr=lr, weight_decay=wd)
        case "momentum":
            return optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
        case "nesterov":
            return optim.SGD(params, lr=lr, momentum=config.momentum, nesterov=True,
                             weight_decay=wd)
        case "rmsprop":
            return optim.RMSprop(params, lr=lr, weight_decay=wd)
        case "adam":
            return optim.Adam(params, lr=lr, weight_decay=wd)
        case "adamw":
            return optim.AdamW(params, lr=lr, weight_decay=wd)


def build_scheduler(config: RunConfig, optimizer):
    """The per-epoch schedule, preceded by ``warmup`` epochs of linear warm-up."""
    after_warmup = max(config.epochs - config.warmup, 1)
    match config.lr_schedule:
        case "none":
            main = None
        case "step":
            main = lr_scheduler.StepLR(optimizer, step_size=max(after_warmup // 3, 1), gamma=0.1)
        case "exponential":
            main = lr_scheduler.ExponentialLR(optimizer, gamma=0.01 ** (1 / after_warmup))
        case "cosine":
            main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=after_warmup)
        case "plateau":
            main = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)
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
    by the saved ``scaler_state`` of a trained model)."""
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
    return data, scaler


def train(config: RunConfig, resume=False, progress=None, callbacks=(),
          max_memory=None) -> dict:
    """Run ``config`` and write its results into ``config.out`` (if set); returns the
    summary. With ``resume``, continue the run saved in ``config.out``. A model that
    would need more than ``max_memory`` bytes (default: the machine's RAM) is refused
    before it is built."""
    if resume:  # the saved options, but the folder as given now (it may have moved)
        config = dataclasses.replace(saved_config(config.out), out=config.out)
    config = config.resolved()
    lock = folder_lock(config.out) if config.out is not None else contextlib.nullcontext()
    with lock:  # the run's folder is its own until every file is written
        return _train(config, resume, progress, callbacks, max_memory)


def _train(config, resume, progress, callbacks, max_memory) -> dict:
    data, scaler = prepare_data(config)
    check_memory(config, data.num_features, data.num_classes, max_memory)
    model = build_model(config, data.num_features, data.num_classes)
    optimizer = build_optimizer(config, model.parameters())
    trainer = Trainer(model, optimizer, loss=config.loss,
                      scheduler=build_scheduler(config, optimizer), reg=config.reg,
                      epochs=config.epochs, batch_size=config.batch_size,
                      patience=config.patience, seed=config.seed, out_dir=config.out,
                      progress=progress, callbacks=callbacks, config=config.to_dict())
    summary = trainer.fit(data, resume=resume)
    summary["dataset"] = repr(data)
    if config.out is not None:
        out = Path(config.out)
        trainer.check_finite("at the end of training")  # never saved as "the model"
        save({"config": config.to_dict(), "model": model.state_dict(),
              "scaler": scaler.state_dict()}, out / MODEL)
        summary["pictures"] = write_pictures(out, model, data, trainer.history)
        if not summary["pictures"]:
            summary["note"] = 'no pictures: matplotlib is missing (pip install "chainrule[plot]")'
        trainer.write_summary(summary)  # again, now with the pictures
    return summary


@np.errstate(all="ignore")  # a model of huge weights is drawn as it is, without warnings
def write_pictures(out: Path, model, data, history) -> list[str]:
    """curves.png always; boundary.png for 2-D data; templates.png for images (none
    without matplotlib, an optional extra)."""
    if importlib.util.find_spec("matplotlib") is None:
        return []
    from . import plots

    written = [plots.plot_curves(history, out / "curves.png")]
    if data.num_features == 2:
        written.append(plots.plot_boundary(lambda X: predict(model, X), data.X_train,
                                           data.y_train, out / "boundary.png",
                                           title=f"{data.name}: decision regions"))
    if data.image_shape is not None:
        first = model.linear_layers()[0].weight.data
        written.append(plots.plot_templates(first, data.image_shape, out / "templates.png"))
    return [str(p) for p in written]


def predict(model, X):
    """Class labels (N,) for features X (N, D), in evaluation mode."""
    with no_grad():
        model.eval()
        return model(X).data.argmax(axis=1)


def saved_config(out) -> RunConfig:
    if out is None or not str(out).strip():
        raise ChainruleError("--resume needs --out, the folder of the run to continue")
    path = Path(out) / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"cannot resume: no checkpoint at {path} (a run stopped "
                              "before its first epoch ended leaves none); start the run "
                              "again without --resume")
    state = load(path)
    return config_of(state, path)


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


def evaluate(run_dir, data_dir=None) -> dict:
    """Re-evaluate the model a run saved (``model.crk``, else its last checkpoint) on every
    split of its data set; returns {split: {"loss", "accuracy"}}."""
    run_dir = Path(run_dir)
    if run_dir.is_file():  # the model file itself rather than its folder
        run_dir = run_dir.parent
    for name in (MODEL, CHECKPOINT):
        if (run_dir / name).exists():
            state = load(run_dir / name)
            break
    else:
        raise CheckpointError(f"no {MODEL} or {CHECKPOINT} in {run_dir}")
    path = run_dir / name
    config = config_of(state, path)
    if data_dir is not None:
        config.data_dir = data_dir
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
