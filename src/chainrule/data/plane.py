"""Points in the plane: CSV files of ``x1, x2, label`` and the input features of
TensorFlow Playground (x1, x2, x1^2, x2^2, x1*x2, sin x1, sin x2).

``read_points(text)`` parses such a file strictly (every error names its line);
``points_dataset(path)`` makes a ``Dataset`` of one, split by its optional ``split``
column or at random; ``input_features(X, names)`` computes the chosen features of
(standardised) 2-D points.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from chainrule.errors import DataError

from .._io import atomic_write_text
from .datasets import Dataset
from .loader import train_val_split

# name -> feature of the two coordinates x1, x2 (arrays of shape (N,))
FEATURES = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1^2": lambda x1, x2: x1 * x1,
    "x2^2": lambda x1, x2: x2 * x2,
    "x1*x2": lambda x1, x2: x1 * x2,
    "sin(x1)": lambda x1, x2: np.sin(x1),
    "sin(x2)": lambda x1, x2: np.sin(x2),
}
MAX_CLASSES = 8
SPLITS = ("train", "val")
VAL_FRACTION = 0.2  # held out when a file has no split column


def input_features(X: np.ndarray, names) -> np.ndarray:
    """The features ``names`` (keys of ``FEATURES``) of points X (N, 2): (N, len(names))
    float32, in the order given."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise DataError(f"input features are computed from 2-D points (x1, x2); these "
                        f"have shape {X.shape}")
    return np.column_stack([FEATURES[name](X[:, 0], X[:, 1]) for name in names]
                           ).astype(np.float32)


def read_points(text: str, regression: bool = False, max_rows: int | None = None,
                split_column: bool = True):
    """Rows ``x1,x2,label`` (``x1,x2,target`` for ``regression``), a header line allowed
    first, an optional fourth column ``split`` (train or val) unless not ``split_column``.

    Returns X float32 (N, 2), y (int64 class labels 0..7 with none missing, or float32
    targets) and the split column as a list of strings (None when absent). Anything else
    is refused with a ``DataError`` naming the line."""
    points, labels, splits = [], [], []
    columns, allowed = None, (3, 4) if split_column else (3,)
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if not points and columns is None and not _is_number(cells[0]):
            columns = len(cells)  # a header
            if columns not in allowed:
                raise DataError(f"line {number}: expected the columns x1,x2,label"
                                f"{'[,split]' if split_column else ''}, got {len(cells)}")
            continue
        if columns is None:
            columns = len(cells)
        if len(cells) != columns or columns not in allowed:
            what = "x1,x2,target" if regression else "x1,x2,label"
            split = " (and optionally a 4th, split)" if split_column else ""
            raise DataError(f"line {number}: expected 3 columns {what}{split}, got "
                            f"{len(cells)}")
        try:
            x1, x2 = float(cells[0]), float(cells[1])
        except ValueError:
            raise DataError(f"line {number}: {cells[0][:20]!r} or {cells[1][:20]!r} is not "
                            "a number") from None
        if not (math.isfinite(x1) and math.isfinite(x2)):
            raise DataError(f"line {number}: coordinates must be finite numbers")
        labels.append(_target(cells[2], number) if regression else _label(cells[2], number))
        points.append((x1, x2))
        if columns == 4:
            if cells[3] not in SPLITS:
                raise DataError(f"line {number}: the split {cells[3][:20]!r} is not train "
                                "or val")
            splits.append(cells[3])
        if max_rows is not None and len(points) > max_rows:
            raise DataError(f"more than {max_rows} rows")
    if len(points) < 10:
        raise DataError(f"at least 10 rows of x1,x2,{'target' if regression else 'label'} "
                        f"are needed, found {len(points)}")
    X = np.array(points, dtype=np.float32)
    if regression:
        y = np.array(labels, dtype=np.float32)
    else:
        y = np.array(labels, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise DataError("the labels must contain at least two classes")
        missing = sorted(set(range(int(y.max()) + 1)) - set(y.tolist()))
        if missing:
            raise DataError(f"labels must be 0..{int(y.max())} with none missing; no row "
                            f"has label {missing[0]}")
    if splits and not {"train", "val"} <= set(splits):
        raise DataError("the split column must name both train and val rows")
    return X, y, (splits or None)


def points_dataset(path, regression: bool = False, seed: int = 0) -> Dataset:
    """The CSV file at ``path`` (see ``read_points``) as a ``Dataset`` named after it.

    Rows marked ``train`` and ``val`` form those splits, in file order; without a split
    column, ``VAL_FRACTION`` of the rows (stratified by class) is held out, fixed by
    ``seed``. For ``regression`` the targets are real and ``num_classes`` is 1 (one
    output)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"--data {path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(f"--data {path}: not a text (CSV) file") from None
    try:
        X, y, splits = read_points(text, regression)
    except DataError as e:
        raise DataError(f"--data {path}: {e}") from None
    if splits is None:
        X_train, y_train, X_val, y_val = train_val_split(X, y, VAL_FRACTION, seed=seed,
                                                         stratify=not regression)
    else:
        train = np.array([s == "train" for s in splits])
        X_train, y_train, X_val, y_val = X[train], y[train], X[~train], y[~train]
    classes = 1 if regression else int(y.max()) + 1
    return Dataset("csv", X_train, y_train, X_val, y_val, None, None, classes,
                   regression=regression)


def write_points(path_or_file, splits: dict) -> None:
    """Write ``{"train": (X, y), "val": (X, y)}`` as a CSV that ``points_dataset`` reads
    back exactly (every float written with all its digits)."""
    lines = ["x1,x2,label,split"]
    for split, (X, y) in splits.items():
        for (a, b), t in zip(np.asarray(X, dtype=np.float64).tolist(), np.asarray(y).tolist()):
            lines.append(f"{a!r},{b!r},{t!r},{split}")
    text = "\n".join(lines) + "\n"
    if hasattr(path_or_file, "write"):
        path_or_file.write(text)
    else:
        atomic_write_text(path_or_file, text)


def _is_fraction(cell: str) -> bool:
    try:
        return not float(cell).is_integer()
    except ValueError:
        return False


def _label(cell: str, number: int) -> int:
    if not cell.isdigit() or int(cell) >= MAX_CLASSES:
        hint = (" (real-valued targets make a regression: --loss mse, or the playground's "
                "regression problem)" if _is_fraction(cell) else "")
        raise DataError(f"line {number}: the label {cell[:20]!r} is not a whole number from "
                        f"0 to {MAX_CLASSES - 1}{hint}")
    return int(cell)


def _target(cell: str, number: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"line {number}: the target {cell[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"line {number}: the target must be a finite number")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
