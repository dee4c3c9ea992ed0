"""The playground's data: generated 2-D sets, uploaded CSV files, input features.

``make_dataset(config, upload)`` returns the ``Dataset`` the session trains on (its
validation split is the playground's test set) and the ``Standardize`` of its inputs.
For a data set ``chainrule train`` generates by name (at its noise, classes and split)
the data are exactly what that command loads (``experiment.prepare_data``); any other
points are the ones ``data_csv`` writes for ``chainrule train --data``. Either way an
exported command reproduces the numbers. Features (x1^2, sin(x1)...) are computed from
the standardised coordinates, as ``chainrule train --features`` computes them.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

from ..data import Dataset, Standardize, input_features, toys, train_val_split
from ..data.plane import read_points, write_points
from ..errors import ConfigError, DataError, UploadError
from ..experiment import prepare_data
from .config import PlaygroundConfig

MAX_UPLOAD_BYTES = 1_000_000
MAX_UPLOAD_ROWS = 5_000
POINTS = 600  # generated points, train and test together (chainrule train: 300 + 300)


def parse_csv(text: str, regression: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An uploaded file of rows ``x1,x2,label`` (``x1,x2,target`` for a regression), an
    optional header line first, as float32 (N, 2) points and their labels (int64 0..7,
    at least two classes, none missing) or targets (float32). Anything else is refused
    with the line number; at most ``MAX_UPLOAD_BYTES`` and ``MAX_UPLOAD_ROWS``."""
    if not isinstance(text, str):
        raise UploadError("the upload must be text (a CSV file)")
    if len(text.encode("utf-8", "replace")) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is larger than {MAX_UPLOAD_BYTES // 1000} kB")
    try:
        X, y, _ = read_points(text, regression=regression, max_rows=MAX_UPLOAD_ROWS,
                              split_column=False)  # the training data slider splits
    except DataError as e:
        raise UploadError(str(e)) from None
    return X, y


def gaussians(n: int, classes: int, noise: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` Gaussian blobs of std 0.3 + ``noise`` on a circle of radius 1.5."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(classes) / classes + (np.pi / 4 if classes == 2 else 0)
    centres = 1.5 * np.column_stack([np.cos(angles), np.sin(angles)])
    y = np.arange(n) % classes
    X = centres[y] + rng.normal(0.0, 0.3 + noise, (n, 2))
    return X.astype(np.float32), y.astype(np.int64)


def plane(n: int, noise: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """A regression: points uniform in [-6, 6]^2, the target (x1 + x2) / 10 (so in
    [-1.2, 1.2]) taken at the point moved by up to 6 * ``noise`` in each coordinate."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-6, 6, (n, 2))
    moved = X + rng.uniform(-6, 6, (n, 2)) * noise
    return X.astype(np.float32), ((moved[:, 0] + moved[:, 1]) / 10).astype(np.float32)


# (x1, x2, sign) of the six bumps of the multi-gaussian regression
BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1],
                  [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], dtype=np.float64)


def multi_gaussian(n: int, noise: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """A regression: points uniform in [-6, 6]^2 under six bumps of height +1 or -1 that
    fall linearly to 0 at distance 2 from their centres; the target is the bump largest
    in size at the point moved by up to 6 * ``noise`` in each coordinate."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-6, 6, (n, 2))
    moved = X + rng.uniform(-6, 6, (n, 2)) * noise
    distance = np.linalg.norm(moved[:, None, :] - BUMPS[None, :, :2], axis=2)  # (n, 6)
    heights = BUMPS[:, 2] * np.clip(1 - distance / 2, 0, 1)
    pick = np.abs(heights).argmax(axis=1)
    return X.astype(np.float32), heights[np.arange(n), pick].astype(np.float32)


def _points(config: PlaygroundConfig, upload):
    if config.dataset == "upload":
        if upload is None:
            raise UploadError("no CSV file has been uploaded yet")
        X, y = upload
        if (y.dtype.kind == "f") != (config.problem == "regression"):
            read = "real targets" if y.dtype.kind == "f" else "class labels"
            raise UploadError(f"the uploaded file was read as {read}: upload it again with "
                              f"the problem type set to {config.problem}")
        return X, y
    n, noise, seed = POINTS, config.noise, config.seed
    match config.dataset:
        case "circle":
            return toys.circles(n_samples=n, noise=noise, seed=seed)
        case "xor":
            return toys.xor(n_samples=n, noise=noise, seed=seed)
        case "moons":
            return toys.moons(n_samples=n, noise=noise, seed=seed)
        case "spiral":
            return toys.spiral(n_per_class=n // config.classes, classes=config.classes,
                               noise=noise, seed=seed)
        case "gaussians":
            return gaussians(n, config.classes, noise, seed)
        case "plane":
            return plane(n, noise, seed)
        case "multi-gaussian":
            return multi_gaussian(n, noise, seed)
    raise ConfigError(f"unknown data set {config.dataset!r}")


def make_dataset(config: PlaygroundConfig, upload=None):
    """(Dataset of the chosen input features, the Standardize of the coordinates, raw
    train and test points (N, 2))."""
    regression = config.problem == "regression"
    if config.catalog_data():  # exactly chainrule train's data
        run = dataclasses.replace(config.run_config(), features=None)
        data, scaler = prepare_data(run)
        std_train, std_test = data.X_train, data.X_val
        y_train, y_test, classes = data.y_train, data.y_val, data.num_classes
        raw_train = scaler.mean + std_train * scaler.std
        raw_test = scaler.mean + std_test * scaler.std
    else:
        X, y = _points(config, upload)
        raw_train, y_train, raw_test, y_test = train_val_split(
            X, y, 1 - config.train_ratio / 100, seed=config.seed, stratify=not regression)
        scaler = Standardize().fit(raw_train)
        std_train, std_test = scaler.transform(raw_train), scaler.transform(raw_test)
        classes = 1 if regression else int(max(y.max() + 1, 2))
    data = Dataset(config.dataset, input_features(std_train, config.features), y_train,
                   input_features(std_test, config.features), y_test, None, None, classes,
                   regression=regression)
    return data, scaler, (np.asarray(raw_train), np.asarray(raw_test))


def data_csv(data: Dataset, raw_train, raw_test) -> str:
    """The points of a session as the CSV ``chainrule train --data`` reads back exactly:
    its training points, then its test points (the run's validation split)."""
    buffer = io.StringIO()
    write_points(buffer, {"train": (raw_train, data.y_train), "val": (raw_test, data.y_val)})
    return buffer.getvalue()


def features(X: np.ndarray, names) -> np.ndarray:
    """The chosen input features of standardised coordinates X (N, 2): (N, len(names))."""
    return input_features(X, names)
