"""digits and iris, loaded from scikit-learn (skipped when it is not installed)."""

import sys

import numpy as np
import pytest

from chainrule.data import digits, iris, load_dataset
from chainrule.errors import DatasetNotFoundError


@pytest.fixture
def sklearn():
    return pytest.importorskip("sklearn.datasets")


def test_missing_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes "import sklearn" fail
    with pytest.raises(DatasetNotFoundError, match=r'pip install "chainrule\[datasets\]"'):
        digits()


def test_digits_shapes_scaling_and_split(sklearn):
    ds = digits(seed=0)
    total = len(ds.X_train) + len(ds.X_val) + len(ds.X_test)
    assert total == 1797
    assert len(ds.X_test) == round(1797 * 0.2)
    assert len(ds.X_val) == round((1797 - len(ds.X_test)) * 0.1)
    assert ds.num_features == 64 and ds.image_shape == (8, 8) and ds.num_classes == 10
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() == 1.0
    # stratified: every digit appears in every split in about its overall share
    for y in (ds.y_train, ds.y_val, ds.y_test):
        shares = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(shares - 0.1) < 0.03)


def test_splits_are_disjoint_and_fixed_by_seed(sklearn):
    a, b, c = iris(seed=0), iris(seed=0), iris(seed=1)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, c.X_test)
    assert (len(a.X_train), len(a.X_val), len(a.X_test)) == (108, 12, 30)
    assert np.bincount(a.y_test).tolist() == [10, 10, 10]
    # the three splits together are exactly the 150 flowers: none lost, none twice
    ours = np.concatenate([a.X_train, a.X_val, a.X_test])
    raw = sklearn.load_iris().data.astype(np.float32)
    np.testing.assert_array_equal(np.unique(ours, axis=0), np.unique(raw, axis=0))
    assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, raw.tolist()))
    assert a.num_features == 4 and a.num_classes == 3 and a.image_shape is None


def test_load_dataset_by_name(sklearn):
    ds = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(ds.X_val, digits(seed=2).X_val)
    assert load_dataset("iris").name == "iris"


@pytest.mark.parametrize("name", ["digits", "iris"])
def test_read_without_importing_scikit_learn_and_equal_to_its_loader(sklearn, name,
                                                                     monkeypatch):
    import subprocess

    # a fresh process: this one has imported scikit-learn already
    code = (f"import sys; from chainrule.data import {name}; {name}(); "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    bunch = getattr(sklearn, f"load_{name}")()
    loader = {"digits": digits, "iris": iris}[name]
    from_file = loader(seed=3)
    # the same data set when the file cannot be found and scikit-learn's loader runs
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    from_loader = loader(seed=3)
    for split in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        a, b = getattr(from_file, split), getattr(from_loader, split)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert len(bunch.target) == sum(len(s) for s in (from_file.y_train, from_file.y_val,
                                                        from_file.y_test))
