"""DataLoader, train_val_split and Standardize, as a training loop uses them."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.data import DataLoader, Standardize, train_val_split
from chainrule.errors import ChainruleError, DataError, ShapeError


def epoch_order(loader):
    """The example ids of one epoch in the order the loader served them."""
    ids = [xb[:, 0] for xb, _ in loader]
    return np.concatenate(ids).astype(int) if ids else np.array([], dtype=int)


def make_data(n, d=3):
    X = np.zeros((n, d), dtype=np.float32)
    X[:, 0] = np.arange(n)  # column 0 carries the example's id
    y = np.arange(n, dtype=np.int64) % 4
    return X, y


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 70), batch_size=st.integers(1, 20), drop_last=st.booleans())
def test_each_example_once_per_epoch(n, batch_size, drop_last):
    X, y = make_data(n)
    loader = DataLoader(X, y, batch_size=batch_size, drop_last=drop_last, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader)
    served = epoch_order(loader)
    if drop_last:
        assert len(loader) == n // batch_size
        assert len(served) == (n // batch_size) * batch_size
        assert len(set(served.tolist())) == len(served)
    else:
        assert len(loader) == -(-n // batch_size)
        assert sorted(served.tolist()) == list(range(n))
    for xb, yb in batches:
        assert 1 <= len(xb) <= batch_size and len(xb) == len(yb)
        if drop_last:
            assert len(xb) == batch_size
        np.testing.assert_array_equal(yb, y[xb[:, 0].astype(int)])  # pairs stay together


def test_batches_keep_dtype_and_last_batch_is_partial():
    X, y = make_data(10)
    sizes = [len(xb) for xb, _ in DataLoader(X, y, batch_size=4, seed=0)]
    assert sizes == [4, 4, 2]
    xb, yb = next(iter(DataLoader(X, y, batch_size=4, seed=0)))
    assert xb.dtype == np.float32 and yb.dtype == np.int64 and xb.shape == (4, 3)


def test_new_permutation_every_epoch_and_same_seed_same_batches():
    X, y = make_data(100)
    a = DataLoader(X, y, batch_size=16, seed=7)
    b = DataLoader(X, y, batch_size=16, seed=7)
    first, second = epoch_order(a), epoch_order(a)
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(100))
    np.testing.assert_array_equal(first, epoch_order(b))
    np.testing.assert_array_equal(second, epoch_order(b))
    assert not np.array_equal(first, epoch_order(DataLoader(X, y, batch_size=16, seed=8)))


def test_generator_seed_and_no_shuffle():
    X, y = make_data(30)
    a = DataLoader(X, y, batch_size=8, seed=np.random.default_rng(3))
    b = DataLoader(X, y, batch_size=8, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(epoch_order(a), epoch_order(b))
    plain = DataLoader(X, y, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(epoch_order(plain), np.arange(30))


def test_without_labels_yields_arrays():
    X, _ = make_data(9)
    batches = list(DataLoader(X, batch_size=4, seed=0))
    assert all(isinstance(b, np.ndarray) for b in batches)
    assert sorted(np.concatenate(batches)[:, 0].tolist()) == list(range(9))


class Squares:
    """A dataset object that is not an array: item i is a 2x2 image filled with i."""

    def __len__(self):
        return 11

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise TypeError("integer index only")
        return np.full((2, 2), i, dtype=np.float32)


def test_dataset_objects_and_lists():
    labels = list(range(11))
    batches = list(DataLoader(Squares(), labels, batch_size=5, seed=0))
    assert [xb.shape for xb, _ in batches] == [(5, 2, 2), (5, 2, 2), (1, 2, 2)]
    for xb, yb in batches:
        assert isinstance(yb, np.ndarray)
        np.testing.assert_array_equal(xb[:, 0, 0], yb)
    ids = np.concatenate([yb for _, yb in batches])
    assert sorted(ids.tolist()) == labels


def test_dataset_object_returning_pairs():
    pairs = [(np.array([i, i], dtype=np.float32), i % 2) for i in range(7)]
    xb, yb = next(iter(DataLoader(pairs, batch_size=7, seed=0)))
    assert xb.shape == (7, 2) and yb.shape == (7,)
    np.testing.assert_array_equal(xb[:, 0].astype(int) % 2, yb)


def test_state_dict_resumes_the_same_epochs():
    X, y = make_data(50)
    uninterrupted = DataLoader(X, y, batch_size=8, seed=11)
    orders = [epoch_order(uninterrupted) for _ in range(4)]

    first_run = DataLoader(X, y, batch_size=8, seed=11)
    for _ in range(2):
        epoch_order(first_run)
    saved = json.loads(json.dumps(first_run.state_dict()))  # survives a JSON checkpoint

    resumed = DataLoader(X, y, batch_size=8, seed=999)
    resumed.load_state_dict(saved)
    np.testing.assert_array_equal(epoch_order(resumed), orders[2])
    np.testing.assert_array_equal(epoch_order(resumed), orders[3])


def test_bad_state_dict():
    loader = DataLoader(np.zeros((3, 1)), seed=0)
    with pytest.raises(DataError):
        loader.load_state_dict({"mean": 1})
    with pytest.raises(DataError, match="MT19937"):
        loader.load_state_dict({"rng": np.random.MT19937(0).state})


def test_mismatched_lengths_and_bad_batch_size():
    with pytest.raises(DataError, match="X has 5.*y has 4"):
        DataLoader(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError):  # DataError is a ValueError too
        DataLoader(np.zeros((5, 2)), np.zeros(6))
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(DataError, match="batch_size"):
            DataLoader(np.zeros((5, 2)), batch_size=bad)
    with pytest.raises(ChainruleError):
        DataLoader(42)


def test_train_val_split_stratified_and_deterministic():
    y = np.repeat([0, 1, 2], [100, 60, 40]).astype(np.int64)
    X = np.arange(len(y), dtype=np.float32)[:, None]
    X_tr, y_tr, X_va, y_va = train_val_split(X, y, val_fraction=0.2, seed=5)
    assert len(X_va) == 40 and len(X_tr) == 160
    assert np.bincount(y_va).tolist() == [20, 12, 8]
    # every example lands in exactly one part, with its own label
    ids = np.concatenate([X_tr[:, 0], X_va[:, 0]]).astype(int)
    assert sorted(ids.tolist()) == list(range(200))
    np.testing.assert_array_equal(y[X_va[:, 0].astype(int)], y_va)
    again = train_val_split(X, y, val_fraction=0.2, seed=5)
    for a, b in zip((X_tr, y_tr, X_va, y_va), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = train_val_split(X, y, val_fraction=0.2, seed=6)
    assert not np.array_equal(np.sort(X_va[:, 0]), np.sort(other[2][:, 0]))


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=5).filter(lambda c: sum(c) >= 2),
    val_fraction=st.floats(0.05, 0.95),
)
def test_stratified_split_keeps_class_shares(counts, val_fraction):
    y = np.repeat(np.arange(len(counts)), counts)
    X = np.arange(len(y))[:, None]
    _, y_tr, _, y_va = train_val_split(X, y, val_fraction=val_fraction, seed=0)
    n = len(y)
    assert len(y_va) == min(max(round(n * val_fraction), 1), n - 1)
    assert len(y_tr) + len(y_va) == n
    got = np.bincount(y_va, minlength=len(counts))
    want = np.array(counts) * len(y_va) / n
    assert np.all(np.abs(got - want) < 1.0 + 1e-9)


def test_unstratified_split_and_errors():
    y = np.zeros(10, dtype=np.int64)
    X_tr, _, X_va, _ = train_val_split(np.arange(10), y, val_fraction=0.3, stratify=False)
    assert len(X_va) == 3 and set(X_tr.tolist()) | set(X_va.tolist()) == set(range(10))
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(DataError, match="val_fraction"):
            train_val_split(np.arange(10), y, val_fraction=bad)
    with pytest.raises(DataError, match="X has 10, y has 9"):
        train_val_split(np.arange(10), y[:9])


def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 3.0, size=(500, 3)).astype(np.float32)
    train[:, 2] = 7.0  # a constant feature
    test = rng.normal(50.0, 1.0, size=(20, 3)).astype(np.float32)
    scaler = Standardize().fit(train)
    z_train = scaler.transform(train)
    assert z_train.dtype == np.float32
    np.testing.assert_allclose(z_train[:, :2].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z_train[:, :2].std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(z_train[:, 2], 0.0)  # no division by zero
    z_test = scaler.transform(test)
    # test data are far from the training mean and must stay far: no refitting on them
    assert np.all(z_test[:, :2] > 10)
    np.testing.assert_allclose(scaler.inverse_transform(z_test), test, rtol=1e-5)
    np.testing.assert_allclose(Standardize().fit_transform(train), z_train)


def test_standardize_state_dtypes_and_errors():
    scaler = Standardize()
    with pytest.raises(DataError, match="before fit"):
        scaler.transform(np.zeros((2, 3)))
    X = np.arange(12, dtype=np.int64).reshape(4, 3)
    scaler.fit(X)
    assert scaler.transform(X).dtype == np.float32
    assert scaler.transform(X.astype(np.float64)).dtype == np.float64
    with pytest.raises(ShapeError):
        scaler.transform(np.zeros((2, 4)))
    copy = Standardize()
    copy.load_state_dict(scaler.state_dict())
    np.testing.assert_array_equal(copy.transform(X), scaler.transform(X))
    assert set(scaler.state_dict()) == {"mean", "std"}
