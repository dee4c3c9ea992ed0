"""Two-dimensional toy classification problems, generated with NumPy.

Each generator returns ``(X, y)``: X float32 of shape (N, 2), y int64 of shape (N,), rows
grouped by class (shuffle them, or use ``DataLoader``, before taking a prefix). Small
enough to plot, and none of them is separable by a straight line, which is the point: a
linear classifier fails on them and a network with one hidden layer does not.
"""

from __future__ import annotations

import numpy as np

from chainrule.errors import DataError

from .loader import Seed, _is_int


def _check_count(value, name: str, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_noise(noise) -> float:
    if not noise >= 0:
        raise DataError(f"noise must be >= 0, got {noise!r}")
    return float(noise)


def _finish(points: list[np.ndarray], labels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate(points).astype(np.float32), np.concatenate(labels).astype(np.int64)


def spiral(
    n_per_class: int = 100, classes: int = 3, noise: float = 0.2, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The CS231n spiral: ``classes`` arms winding out of the origin, ``n_per_class`` each.

    Class j has radius r = linspace(0, 1, n) and angle t = linspace(4j, 4(j+1), n) plus
    Gaussian noise of standard deviation ``noise``; its points are (r sin t, r cos t).
    Returns X float32 (n_per_class * classes, 2) and y int64 in range(classes).
    """
    n = _check_count(n_per_class, "n_per_class", 1)
    classes = _check_count(classes, "classes", 1)
    noise = _check_noise(noise)
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for j in range(classes):
        r = np.linspace(0.0, 1.0, n)
        t = np.linspace(j * 4.0, (j + 1) * 4.0, n) + rng.standard_normal(n) * noise
        points.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        labels.append(np.full(n, j))
    return _finish(points, labels)


def moons(
    n_samples: int = 300, noise: float = 0.1, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles of radius 1, with Gaussian noise of std ``noise``.

    Class 0 is the upper arc centred at (0, 0); class 1 the lower arc centred at (1, 0.5).
    Class 0 gets ``n_samples // 2`` points, class 1 the rest.
    """
    n = _check_count(n_samples, "n_samples", 2)
    noise = _check_noise(noise)
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    n_lower = n - n_upper
    a = np.linspace(0.0, np.pi, n_upper)
    b = np.linspace(0.0, np.pi, n_lower)
    upper = np.column_stack([np.cos(a), np.sin(a)])
    lower = np.column_stack([1.0 - np.cos(b), 0.5 - np.sin(b)])
    points = [
        upper + rng.normal(0.0, noise, upper.shape),
        lower + rng.normal(0.0, noise, lower.shape),
    ]
    return _finish(points, [np.zeros(n_upper), np.ones(n_lower)])


def circles(
    n_samples: int = 300, noise: float = 0.05, factor: float = 0.5, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A ring of radius ``factor`` (class 1) inside a ring of radius 1 (class 0).

    Points are evenly spaced around each ring, then moved by Gaussian noise of std
    ``noise``. ``factor`` must lie strictly between 0 and 1. Class 0 gets ``n_samples // 2``.
    """
    n = _check_count(n_samples, "n_samples", 2)
    noise = _check_noise(noise)
    if not 0.0 < factor < 1.0:
        raise DataError(f"factor must be between 0 and 1 (exclusive), got {factor!r}")
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    points, labels = [], []
    for label, count, radius in ((0, n_outer, 1.0), (1, n_inner, float(factor))):
        angle = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
        ring = radius * np.column_stack([np.cos(angle), np.sin(angle)])
        points.append(ring + rng.normal(0.0, noise, ring.shape))
        labels.append(np.full(count, label))
    return _finish(points, labels)


def xor(n_samples: int = 300, noise: float = 0.1, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian blobs of std ``noise`` centred at (±1, ±1): the XOR problem.

    A point's label is 1 when its blob's coordinates have opposite signs ((1, -1) and
    (-1, 1)) and 0 when they agree, so the classes sit on the two diagonals. The blobs get
    ``n_samples // 4`` points each, the first ``n_samples % 4`` blobs one more; the two
    classes differ in size by at most one.
    """
    n = _check_count(n_samples, "n_samples", 4)
    noise = _check_noise(noise)
    rng = np.random.default_rng(seed)
    # Blobs alternate between the classes so that the extra points are shared fairly.
    centres = [(1.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0)]
    points, labels = [], []
    for k, (cx, cy) in enumerate(centres):
        count = n // 4 + (k < n % 4)
        points.append(np.array([cx, cy]) + rng.normal(0.0, noise, (count, 2)))
        labels.append(np.full(count, int(cx * cy < 0)))
    return _finish(points, labels)
