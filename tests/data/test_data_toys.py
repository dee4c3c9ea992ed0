"""Toy generators, the Dataset container and load_dataset for the toy names."""

import numpy as np
import pytest

from chainrule.data import (
    DATASETS,
    Dataset,
    circles,
    load_dataset,
    moons,
    spiral,
    xor,
)
from chainrule.errors import ChainruleError, DataError, ShapeError

GENERATORS = {
    "spiral": (lambda seed: spiral(n_per_class=50, classes=3, seed=seed), 150, 3),
    "moons": (lambda seed: moons(n_samples=101, seed=seed), 101, 2),
    "circles": (lambda seed: circles(n_samples=101, seed=seed), 101, 2),
    "xor": (lambda seed: xor(n_samples=101, seed=seed), 101, 2),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_shapes_dtypes_balance_and_determinism(name):
    make, n, classes = GENERATORS[name]
    X, y = make(0)
    assert X.shape == (n, 2) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y)
    assert len(counts) == classes and counts.max() - counts.min() <= 1
    assert np.all(np.isfinite(X))
    X2, y2 = make(0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make(1)
    assert not np.allclose(X, X3)


def test_spiral_geometry():
    X, y = spiral(n_per_class=100, classes=3, noise=0.0, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    for j in range(3):
        np.testing.assert_allclose(radius[y == j], np.linspace(0, 1, 100), atol=1e-6)
    # without noise, the last point of arm j sits at angle t = 4(j+1): (sin t, cos t)
    t = 4.0 * 3
    np.testing.assert_allclose(X[-1], [np.sin(t), np.cos(t)], atol=1e-6)


def linear_accuracy(X, y):
    """Training accuracy of a least-squares linear classifier (one-vs-rest)."""
    A = np.column_stack([X, np.ones(len(X))])
    targets = np.eye(y.max() + 1)[y]
    W, *_ = np.linalg.lstsq(A, targets, rcond=None)
    return np.mean((A @ W).argmax(axis=1) == y)


def test_toys_defeat_a_linear_classifier():
    assert linear_accuracy(*spiral(seed=0)) < 0.7
    assert linear_accuracy(*circles(seed=0)) < 0.7
    assert linear_accuracy(*xor(seed=0)) < 0.7
    # sanity check of the yardstick: well-separated blobs are linearly separable
    X = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 5.0)])
    assert linear_accuracy(X, np.repeat([0, 1], 50)) == 1.0


def test_xor_and_circles_labels_follow_the_geometry():
    X, y = xor(n_samples=400, noise=0.1, seed=2)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))
    X, y = circles(n_samples=400, noise=0.0, factor=0.3, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, atol=1e-6)
    X, y = moons(n_samples=200, noise=0.0)
    assert X[y == 0, 1].min() >= -1e-6 and X[y == 1, 1].max() <= 0.5 + 1e-6


def test_generator_argument_errors():
    with pytest.raises(DataError, match="n_samples"):
        moons(n_samples=1)
    with pytest.raises(DataError, match="n_per_class"):
        spiral(n_per_class=0)
    with pytest.raises(DataError, match="noise"):
        xor(noise=-1.0)
    with pytest.raises(DataError, match="factor"):
        circles(factor=1.5)


@pytest.mark.parametrize("name", ["spiral", "moons", "circles", "xor"])
def test_load_dataset_toys(name):
    ds = load_dataset(name, seed=3)
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.X_test is None and ds.y_test is None
    assert ds.num_classes == (3 if name == "spiral" else 2)
    assert ds.num_features == 2 and ds.image_shape is None
    assert ds.X_train.shape == ds.X_val.shape
    assert ds.X_train.dtype == np.float32 and ds.y_val.dtype == np.int64
    assert not np.allclose(ds.X_train, ds.X_val)  # validation is an independent sample
    same = load_dataset(name, seed=3)
    np.testing.assert_array_equal(ds.X_val, same.X_val)
    assert not np.allclose(ds.X_train, load_dataset(name, seed=4).X_train)
    assert f"train={len(ds.X_train)}" in repr(ds) and "test=none" in repr(ds)


def test_load_dataset_unknown_name_lists_choices():
    with pytest.raises(ChainruleError) as info:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(info.value)


def test_dataset_converts_dtypes_and_checks_shapes():
    X = np.ones((4, 6), dtype=np.float64)
    y = np.array([0, 1, 2, 1], dtype=np.int32)
    ds = Dataset("t", X, y, X[:2], y[:2], None, None, num_classes=3, image_shape=(2, 3))
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.num_features == 6 and ds.image_shape == (2, 3)
    with pytest.raises(ShapeError):
        Dataset("t", X, y[:3], X, y, None, None, num_classes=3)
    with pytest.raises(ShapeError):
        Dataset("t", X, y, X[:, :5], y, None, None, num_classes=3)
    with pytest.raises(DataError, match="range"):
        Dataset("t", X, y, X, y, None, None, num_classes=2)
    with pytest.raises(DataError):
        Dataset("t", X, y, X, y, X, None, num_classes=3)
