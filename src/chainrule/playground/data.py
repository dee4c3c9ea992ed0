"""The playground's data: generated 2-D sets, uploaded CSV files, input features.

``make_dataset(config, upload)`` returns the ``Dataset`` the session trains on (its
validation split is the playground's test set) and the ``Standardize`` of its inputs.
When the settings are ``chainrule train``'s, the data are exactly what that command
loads (``experiment.prepare_data``), so an exported command reproduces the numbers.
Features (x1^2, sin(x1)...) are computed from the standardised coordinates.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ..data import Dataset, Standardize, toys, train_val_split
from ..errors import ConfigError, UploadError
from ..experiment import prepare_data
from .config import PlaygroundConfig

MAX_UPLOAD_BYTES = 1_000_000
MAX_UPLOAD_ROWS = 5_000
MAX_UPLOAD_CLASSES = 8
POINTS = 600  # generated points, train and test together (chainrule train: 300 + 300)


def parse_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x1,x2,label`` (an optional header line first) as float32 (N, 2) and
    int64 (N,) arrays. Labels are whole numbers 0..7 and at least two of them occur;
    coordinates are finite numbers. Anything else is refused with the line number."""
    if not isinstance(text, str):
        raise UploadError("the upload must be text (a CSV file)")
    if len(text.encode("utf-8", "replace")) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is larger than {MAX_UPLOAD_BYTES // 1000} kB")
    points, labels = [], []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise UploadError(f"line {number}: expected 3 columns x1,x2,label, got {len(row)}")
        cells = [cell.strip() for cell in row]
        if number == 1 and not _is_number(cells[0]):
            continue  # a header
        try:
            x1, x2 = float(cells[0]), float(cells[1])
        except ValueError:
            raise UploadError(f"line {number}: {cells[0][:20]!r} or {cells[1][:20]!r} is "
                              "not a number") from None
        if not (math.isfinite(x1) and math.isfinite(x2)):
            raise UploadError(f"line {number}: coordinates must be finite numbers")
        if not cells[2].isdigit() or int(cells[2]) >= MAX_UPLOAD_CLASSES:
            raise UploadError(f"line {number}: the label {cells[2][:20]!r} is not a whole "
                              f"number from 0 to {MAX_UPLOAD_CLASSES - 1}")
        points.append((x1, x2))
        labels.append(int(cells[2]))
        if len(points) > MAX_UPLOAD_ROWS:
            raise UploadError(f"more than {MAX_UPLOAD_ROWS} rows")
    if len(points) < 10:
        raise UploadError(f"at least 10 rows of x1,x2,label are needed, found {len(points)}")
    y = np.array(labels, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise UploadError("the labels must contain at least two classes")
    missing = sorted(set(range(int(y.max()) + 1)) - set(y.tolist()))
    if missing:
        raise UploadError(f"labels must be 0..{int(y.max())} with none missing; "
                          f"no row has label {missing[0]}")
    return np.array(points, dtype=np.float32), y


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def gaussians(n: int, classes: int, noise: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` Gaussian blobs of std 0.3 + ``noise`` on a circle of radius 1.5."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(classes) / classes + (np.pi / 4 if classes == 2 else 0)
    centres = 1.5 * np.column_stack([np.cos(angles), np.sin(angles)])
    y = np.arange(n) % classes
    X = centres[y] + rng.normal(0.0, 0.3 + noise, (n, 2))
    return X.astype(np.float32), y.astype(np.int64)


def _points(config: PlaygroundConfig, upload):
    if config.dataset == "upload":
        if upload is None:
            raise UploadError("no CSV file has been uploaded yet")
        return upload
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
    raise ConfigError(f"unknown data set {config.dataset!r}")


def make_dataset(config: PlaygroundConfig, upload=None):
    """(Dataset on the raw 2-D coordinates, its Standardize, raw train and test points).

    The Dataset's inputs are the chosen features of the standardised coordinates."""
    if config.catalog_data():
        data, scaler = prepare_data(config.run_config())  # exactly chainrule train's data
        std_train, std_test = data.X_train, data.X_val
        y_train, y_test, classes = data.y_train, data.y_val, data.num_classes
        raw_train = scaler.mean + std_train * scaler.std
        raw_test = scaler.mean + std_test * scaler.std
    else:
        X, y = _points(config, upload)
        raw_train, y_train, raw_test, y_test = train_val_split(
            X, y, 1 - config.train_ratio / 100, seed=config.seed)
        scaler = Standardize().fit(raw_train)
        std_train, std_test = scaler.transform(raw_train), scaler.transform(raw_test)
        classes = int(max(y.max() + 1, 2))
    data = Dataset(config.dataset, features(std_train, config.features), y_train,
                   features(std_test, config.features), y_test, None, None, classes)
    return data, scaler, (np.asarray(raw_train), np.asarray(raw_test))


def features(X: np.ndarray, names) -> np.ndarray:
    """The chosen input features of standardised coordinates X (N, 2): (N, len(names))."""
    x1, x2 = X[:, 0], X[:, 1]
    table = {"x1": lambda: x1, "x2": lambda: x2, "x1^2": lambda: x1 * x1,
             "x2^2": lambda: x2 * x2, "x1*x2": lambda: x1 * x2,
             "sin(x1)": lambda: np.sin(x1), "sin(x2)": lambda: np.sin(x2)}
    return np.column_stack([table[name]() for name in names]).astype(np.float32)
