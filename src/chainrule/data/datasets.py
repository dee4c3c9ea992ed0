"""The ``Dataset`` container and the two small real data sets that ship with scikit-learn.

Every loader in ``chainrule.data`` returns a ``Dataset``: training, validation and
(optional) test splits as float32 feature matrices of shape (N, D) and int64 label vectors
of shape (N,), plus what a model needs to know about them (number of classes, and for
images the shape a row folds back into). ``digits`` and ``iris`` come from scikit-learn,
which is an optional dependency (``pip install "chainrule[datasets]"``).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule.errors import DataError, DatasetNotFoundError, ShapeError

from .loader import Seed, train_val_split


@dataclass(repr=False, eq=False)
class Dataset:
    """Train, validation and optional test splits of one data set.

    ``X_*`` are float32 arrays of shape (N, num_features); ``y_*`` are int64 arrays of shape
    (N,) holding class indices in ``range(num_classes)``. ``X_test``/``y_test`` are both None
    when the data set has no test split. ``image_shape`` is the shape one row reshapes to
    for images, e.g. (8, 8) for digits, (28, 28) for MNIST, (3, 32, 32) for CIFAR-10
    (channel-major), and None for data that are not images. Inputs are converted to these
    dtypes on construction. With ``regression`` the ``y_*`` are real targets (float32,
    shape (N,)) and ``num_classes`` is 1: the model's one output.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int
    image_shape: tuple[int, ...] | None = None
    regression: bool = False

    def __post_init__(self) -> None:
        self.num_classes = int(self.num_classes)
        if (self.X_test is None) != (self.y_test is None):
            raise DataError("X_test and y_test must both be given or both be None")
        for split in ("train", "val", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if X is None:
                continue
            X = np.asarray(X, dtype=np.float32)
            y = np.asarray(y, dtype=np.float32 if self.regression else np.int64)
            if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
                raise ShapeError(
                    f"{split} split must be X of shape (N, D) and y of shape (N,), "
                    f"got X {X.shape} and y {y.shape}"
                )
            if X.shape[1] != np.shape(self.X_train)[1]:
                raise ShapeError(
                    f"{split} split has {X.shape[1]} features but the training split has "
                    f"{np.shape(self.X_train)[1]}"
                )
            if not self.regression and len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise DataError(
                    f"{split} labels must lie in range({self.num_classes}), "
                    f"found {y.min()}..{y.max()}"
                )
            setattr(self, f"X_{split}", X)
            setattr(self, f"y_{split}", y)
        if self.image_shape is not None:
            self.image_shape = tuple(int(d) for d in self.image_shape)
            if int(np.prod(self.image_shape)) != self.num_features:
                raise ShapeError(
                    f"image_shape {self.image_shape} does not hold {self.num_features} features"
                )

    @property
    def num_features(self) -> int:
        return int(self.X_train.shape[1])

    def __repr__(self) -> str:
        test = "none" if self.X_test is None else len(self.X_test)
        return (
            f"Dataset({self.name!r}, train={len(self.X_train)}, val={len(self.X_val)}, "
            f"test={test}, features={self.num_features}, classes={self.num_classes})"
        )


def split_three_ways(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    seed: Seed,
    image_shape: tuple[int, ...] | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
) -> Dataset:
    """Make a ``Dataset`` from one labelled pool that has no official split.

    First ``test_fraction`` of the pool is held out as the test set, then ``val_fraction``
    of the rest as the validation set; both stratified by class and fixed by ``seed``.
    """
    rng = np.random.default_rng(seed)
    X_rest, y_rest, X_test, y_test = train_val_split(X, y, test_fraction, seed=rng)
    X_train, y_train, X_val, y_val = train_val_split(X_rest, y_rest, val_fraction, seed=rng)
    return Dataset(name, X_train, y_train, X_val, y_val, X_test, y_test, num_classes, image_shape)


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:
        raise DatasetNotFoundError(
            "the digits and iris data sets come with scikit-learn, which is not installed: "
            'pip install "chainrule[datasets]"'
        ) from None
    return datasets


def _sklearn_table(filename: str, shape: tuple[int, int], header_lines: int = 0):
    """(features, labels) of a table scikit-learn ships as a CSV file in its package
    (sklearn/datasets/data/), read straight from the file its own loader reads: importing
    scikit-learn takes half a second, longer than the training of a small sweep trial.
    ``shape``: the table's (rows, columns), the last column the label. None when the file
    is not there or not of that shape (then scikit-learn's loader is used)."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), "datasets", "data", filename)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if filename.endswith(".gz") else raw).decode("ascii")
        rows = text.strip().split("\n")[header_lines:]
        table = np.array(",".join(rows).split(","), dtype=np.float64).reshape(shape)
    except (OSError, EOFError, ValueError):  # moved, or changed in a newer scikit-learn
        return None
    return table[:, :-1], table[:, -1].astype(np.int64)


def digits(seed: Seed = 0) -> Dataset:
    """The 1 797 8x8 handwritten digits of scikit-learn, 10 classes.

    Pixels are scaled from 0..16 to [0, 1]; 64 features per row, ``image_shape=(8, 8)``.
    Split 20% test, then 10% of the rest validation, stratified, fixed by ``seed``.
    """
    table = _sklearn_table("digits.csv.gz", (1797, 65))
    if table is None:
        bunch = _sklearn_datasets().load_digits()
        table = bunch.data, bunch.target
    X = np.asarray(table[0], dtype=np.float32) / np.float32(16.0)
    return split_three_ways("digits", X, table[1], 10, seed, image_shape=(8, 8))


def iris(seed: Seed = 0) -> Dataset:
    """Fisher's 150 iris flowers: 4 measurements in centimetres, 3 species.

    Features are left in centimetres (use ``Standardize``). Split 20% test, then 10% of the
    rest validation, stratified, fixed by ``seed``.
    """
    table = _sklearn_table("iris.csv", (150, 5), header_lines=1)
    if table is None:
        bunch = _sklearn_datasets().load_iris()
        table = bunch.data, bunch.target
    return split_three_ways("iris", *table, 3, seed)


def search_dirs(name: str, path: str | os.PathLike | None, system_dirs=()) -> list[Path]:
    """The folders a file-based data set is looked for in, in order.

    An explicit ``path`` is the only root when given; otherwise ``$CHAINRULE_DATA/<name>``
    followed by ``system_dirs`` (folders a system package installs into).
    """
    if path is not None:
        return [Path(path).expanduser()]
    roots = []
    data_home = os.environ.get("CHAINRULE_DATA")
    if data_home:
        roots.append(Path(data_home).expanduser() / name)
    roots.extend(Path(d) for d in system_dirs)
    return roots


def describe_places(name: str, path, places: list[Path]) -> str:
    """The places looked in, for an error message; says so when $CHAINRULE_DATA is unset."""
    shown = [str(p) for p in places]
    if path is None and not os.environ.get("CHAINRULE_DATA"):
        shown.insert(0, f"$CHAINRULE_DATA/{name} (CHAINRULE_DATA is not set)")
    return ", ".join(shown)
