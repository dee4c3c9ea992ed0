"""The playground's settings: checked strictly, mapped to a ``RunConfig`` and a command.

A page sends its settings as JSON (and keeps them in its URL); ``PlaygroundConfig.parse``
accepts only known keys with values of the right type inside fixed ranges, so nothing a
user types is ever evaluated or trusted. ``run_config()`` is the same run as a
``RunConfig``, and ``command()`` the ``chainrule train`` command line that reproduces
every number of it: the data sets ``chainrule train`` generates by name, any other data
(other noise, another split, gaussians, the regression sets, an upload) through
``--data`` and the CSV file the playground exports beside the command.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field

from ..errors import ChainruleError, ConfigError
from ..experiment import OPTIMIZERS, SCHEDULES, RunConfig
from ..nn import ACTIVATIONS
from ..train import LOSSES

DATASETS = ("circle", "xor", "gaussians", "spiral", "moons", "plane", "multi-gaussian",
            "upload")
PROBLEMS = ("classification", "regression")
REGRESSION_DATASETS = ("plane", "multi-gaussian")  # TensorFlow Playground's regression sets
DATA_FILE = "playground-data.csv"  # the exported points, as the command names them
# Playground names of the data sets ``chainrule train`` generates, and their settings there.
CATALOG = {"circle": "circles", "xor": "xor", "spiral": "spiral", "moons": "moons"}
CATALOG_NOISE = {"circle": 0.05, "xor": 0.1, "spiral": 0.2, "moons": 0.1}
CATALOG_CLASSES = {"circle": 2, "xor": 2, "spiral": 3, "moons": 2}
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
REGULARIZATION = ("none", "L1", "L2")
MAX_LAYERS, MAX_NEURONS = 6, 16


@dataclass
class PlaygroundConfig:
    """Everything the playground's controls set. Defaults: TensorFlow Playground's circle
    with 2 hidden layers of 4 and 2 tanh neurons, trained by chainrule's Adam."""

    dataset: str = "circle"
    problem: str = "classification"  # or "regression": one real output, squared error
    noise: float = 0.05
    train_ratio: int = 50  # percent of the points used for training; the rest is the test set
    classes: int = 2  # spiral and gaussians
    features: list[str] = field(default_factory=lambda: ["x1", "x2"])
    hidden: list[int] = field(default_factory=lambda: [4, 2])
    activations: list[str] = field(default_factory=lambda: ["tanh", "tanh"])
    loss: str = "softmax"
    optimizer: str = "adam"
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "none"
    warmup: int = 0
    regularization: str = "none"
    reg_rate: float = 0.001
    dropout: float = 0.0
    batch_size: int = 10
    epochs: int = 200  # the stop rule: at most this many epochs...
    patience: int | None = None  # ...or stop after this many without a better test accuracy
    seed: int = 0

    # ----- strict parsing ------------------------------------------------------------------
    @classmethod
    def parse(cls, values) -> PlaygroundConfig:
        """A config from untrusted JSON: unknown keys, wrong types and values out of range
        are refused with a ``ConfigError`` naming the setting."""
        if not isinstance(values, dict):
            raise ConfigError("settings must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}")
        config = dataclasses.replace(cls(), **values)
        config.check()
        return config

    def check(self):
        _choice("dataset", self.dataset, DATASETS)
        _choice("problem", self.problem, PROBLEMS)
        regression = self.problem == "regression"
        if self.dataset != "upload" and (self.dataset in REGRESSION_DATASETS) != regression:
            raise ConfigError(f"dataset: {self.dataset} is not a {self.problem} data set")
        if (self.loss == "mse") != regression:
            raise ConfigError("loss: mse (squared error) for a regression, softmax or svm "
                              "for classes")
        _number("noise", self.noise, 0.0, 1.0)
        _integer("train_ratio", self.train_ratio, 10, 90)
        _integer("classes", self.classes, 2, 6)
        if (not isinstance(self.features, list) or not self.features
                or len(set(map(str, self.features))) != len(self.features)):
            raise ConfigError("features: a non-empty list of distinct features")
        for name in self.features:
            _choice("features", name, FEATURES)
        if not isinstance(self.hidden, list) or len(self.hidden) > MAX_LAYERS:
            raise ConfigError(f"hidden: a list of at most {MAX_LAYERS} layer sizes")
        for size in self.hidden:
            _integer("hidden", size, 1, MAX_NEURONS)
        if not isinstance(self.activations, list) or len(self.activations) != len(self.hidden):
            raise ConfigError("activations: one per hidden layer")
        for name in self.activations:
            _choice("activations", name, tuple(ACTIVATIONS))
        _choice("loss", self.loss, tuple(LOSSES))
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _number("lr", self.lr, 1e-6, 10.0)
        _number("momentum", self.momentum, 0.0, 0.999)
        _number("weight_decay", self.weight_decay, 0.0, 1.0)
        _choice("lr_schedule", self.lr_schedule, SCHEDULES)
        _integer("warmup", self.warmup, 0, 1000)
        _choice("regularization", self.regularization, REGULARIZATION)
        _number("reg_rate", self.reg_rate, 0.0, 10.0)
        _number("dropout", self.dropout, 0.0, 0.9)
        _integer("batch_size", self.batch_size, 1, 1000)
        _integer("epochs", self.epochs, 1, 100_000)
        if self.patience is not None:
            _integer("patience", self.patience, 1, 100_000)
        _integer("seed", self.seed, 0, 2**31 - 1)
        if self.warmup and self.lr_schedule == "plateau":
            raise ConfigError("--warmup cannot be combined with --lr-schedule plateau")
        try:
            self.run_config().resolved()
        except ChainruleError as e:  # what RunConfig itself refuses
            raise ConfigError(str(e)) from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # ----- the same run for ``chainrule train`` --------------------------------------------
    @property
    def num_classes(self) -> int:
        """Classes of a generated data set (spiral and gaussians take ``classes``)."""
        return self.classes if self.dataset in ("spiral", "gaussians") else 2

    def run_config(self, out: str | None = None, data: str = DATA_FILE) -> RunConfig:
        """This run as a ``RunConfig``; the points are read from the file ``data`` unless
        they are a data set ``chainrule train`` generates by name."""
        l2 = self.reg_rate if self.regularization == "L2" else 0.0
        l1 = self.reg_rate if self.regularization == "L1" else 0.0
        catalog = self.catalog_data()
        activation = (self.activations[0] if len(set(self.activations)) == 1
                      else list(self.activations)) if self.activations else "relu"
        return RunConfig(
            dataset=CATALOG[self.dataset] if catalog else "csv", hidden=list(self.hidden),
            activation=activation, dropout=float(self.dropout), loss=self.loss,
            optimizer=self.optimizer, lr=float(self.lr), momentum=float(self.momentum),
            weight_decay=float(self.weight_decay), reg=float(l2), l1=float(l1),
            lr_schedule=self.lr_schedule, warmup=self.warmup, epochs=self.epochs,
            batch_size=self.batch_size, patience=self.patience, seed=self.seed, out=out,
            data=None if catalog else data,
            features=None if self.features == ["x1", "x2"] else list(self.features))

    def catalog_data(self) -> bool:
        """Whether the data are those ``chainrule train`` generates for the data set."""
        return (self.dataset in CATALOG
                and abs(self.noise - CATALOG_NOISE[self.dataset]) <= 1e-12
                and self.num_classes == CATALOG_CLASSES[self.dataset]
                and self.train_ratio == 50)

    def command(self, out: str = "runs/playground", data: str = DATA_FILE) -> str:
        """The ``chainrule train`` command line that reproduces this run (its points in
        the file ``data`` unless the data set is one the command generates)."""
        c = self.run_config(out, data)
        source = ["--data", c.data] if c.data is not None else ["--dataset", c.dataset]
        activations = c.activation if isinstance(c.activation, list) else [c.activation]
        parts = ["chainrule", "train", *source,
                 "--hidden", *([str(h) for h in c.hidden] or ["none"])]
        if c.hidden:
            parts += ["--activation", *activations]
        if c.features is not None:
            parts += ["--features", *c.features]
        parts += ["--loss", c.loss, "--optimizer", c.optimizer, "--lr", repr(c.lr),
                  "--batch-size", str(c.batch_size), "--epochs", str(c.epochs),
                  "--seed", str(c.seed)]
        if c.optimizer in ("momentum", "nesterov"):
            parts += ["--momentum", repr(c.momentum)]
        for flag, value, default in (("--weight-decay", c.weight_decay, 0.0),
                                     ("--reg", c.reg, 0.0), ("--l1", c.l1, 0.0),
                                     ("--dropout", c.dropout, 0.0)):
            if value != default:
                parts += [flag, repr(value)]
        if c.lr_schedule != "none":
            parts += ["--lr-schedule", c.lr_schedule]
        if c.warmup:
            parts += ["--warmup", str(c.warmup)]
        if c.patience is not None:
            parts += ["--patience", str(c.patience)]
        parts += ["--out", out, "--quiet"]
        return shlex.join(parts)


def _choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name}: {str(value)[:40]!r} is not one of {', '.join(allowed)}")


def _number(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            low <= value <= high):
        raise ConfigError(f"{name}: expected a number from {low} to {high}, "
                          f"got {str(value)[:40]!r}")


def _integer(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: expected a whole number from {low} to {high}, "
                          f"got {str(value)[:40]!r}")
