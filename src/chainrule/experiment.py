"""A training run described by a ``RunConfig``: data, model, optimizer and schedule built
from plain options, trained by ``Trainer``, with its reports and pictures written out.
This is what ``chainrule train`` and ``chainrule evaluate`` run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from . import optim
from .data import Standardize, load_dataset
from .engine import no_grad
from .errors import ChainruleError, CheckpointError
from .nn import ACTIVATIONS, MLP
from .optim import lr_scheduler
from .serialization import load, save
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
        scaler.load_state_dict(scaler_state)
    data.X_train, data.X_val = scaler.transform(data.X_train), scaler.transform(data.X_val)
    if data.X_test is not None:
        data.X_test = scaler.transform(data.X_test)
    return data, scaler


def train(config: RunConfig, resume=False, progress=None, callbacks=(), compile=True) -> dict:
    """Run ``config`` and write its results into ``config.out`` (if set); returns the
    summary. With ``resume``, continue the run saved in ``config.out``. ``compile``:
    compile the training step (same numbers, faster; see ``cr.compile``)."""
    if resume:  # the saved options, but the folder as given now (it may have moved)
        config = dataclasses.replace(saved_config(config.out), out=config.out)
    config = config.resolved()
    data, scaler = prepare_data(config)
    model = build_model(config, data.num_features, data.num_classes)
    optimizer = build_optimizer(config, model.parameters())
    trainer = Trainer(model, optimizer, loss=config.loss,
                      scheduler=build_scheduler(config, optimizer), reg=config.reg,
                      epochs=config.epochs, batch_size=config.batch_size,
                      patience=config.patience, seed=config.seed, out_dir=config.out,
                      progress=progress, callbacks=callbacks, config=config.to_dict(),
                      compile=compile)
    summary = trainer.fit(data, resume=resume)
    summary["dataset"] = repr(data)
    if config.out is not None:
        out = Path(config.out)
        save({"config": config.to_dict(), "model": model.state_dict(),
              "scaler": scaler.state_dict()}, out / MODEL)
        summary["pictures"] = write_pictures(out, model, data, trainer.history)
        if not summary["pictures"]:
            summary["note"] = 'no pictures: matplotlib is missing (pip install "chainrule[plot]")'
        trainer.write_summary(summary)  # again, now with the pictures
    return summary


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
    if out is None:
        raise ChainruleError("--resume needs --out, the folder of the run to continue")
    path = Path(out) / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"cannot resume: no checkpoint at {path}")
    return RunConfig.from_dict(load(path)["config"])


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
    config = RunConfig.from_dict(state["config"])
    if data_dir is not None:
        config.data_dir = data_dir
    config = config.resolved()
    data, _ = prepare_data(config, state.get("scaler"))
    model = build_model(config, data.num_features, data.num_classes)
    model.load_state_dict(state["model"])
    trainer = Trainer(model, build_optimizer(config, model.parameters()), loss=config.loss,
                      progress=False)
    results = {}
    for split in ("train", "val", "test"):
        X = getattr(data, f"X_{split}")
        if X is not None:
            loss, accuracy = trainer.evaluate(X, getattr(data, f"y_{split}"))
            results[split] = {"loss": loss, "accuracy": accuracy}
    return results
