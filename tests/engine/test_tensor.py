"""The Tensor a user holds: factories, dtypes, attributes, repr and NumPy interplay."""

import numpy as np
import pytest

import chainrule as cr


# ----- factories ------------------------------------------------------------------------------
@pytest.mark.parametrize("factory, fill", [(cr.zeros, 0.0), (cr.ones, 1.0)])
def test_zeros_and_ones(factory, fill):
    for t in (factory(2, 3), factory((2, 3)), factory([2, 3])):
        assert t.shape == (2, 3) and t.dtype == np.float32
        assert np.all(t.data == fill)
        assert not t.requires_grad and t.grad is None and t.is_leaf
    assert factory(4, dtype=cr.float64).dtype == np.float64
    assert factory(2, requires_grad=True, name="b").requires_grad
    assert factory(()).shape == ()


def test_zeros_like_and_ones_like_keep_shape_and_dtype():
    x64 = cr.tensor(np.arange(6.0).reshape(2, 3))
    for like, fill in [(cr.zeros_like, 0.0), (cr.ones_like, 1.0)]:
        t = like(x64)
        assert t.shape == (2, 3) and t.dtype == np.float64 and np.all(t.data == fill)
        assert like(np.ones(4, np.float32)).dtype == np.float32
        assert like(x64, dtype=np.float32).dtype == np.float32
        assert like(x64, requires_grad=True).requires_grad


def test_full_arange_eye():
    f = cr.full((2, 2), 7.5)
    assert f.shape == (2, 2) and f.dtype == np.float32 and np.all(f.data == 7.5)
    assert cr.full(3, 1.0, dtype=cr.float64).dtype == np.float64
    a = cr.arange(5)
    np.testing.assert_array_equal(a.data, np.arange(5))
    assert a.dtype.kind == "i"
    steps = cr.arange(0, 1, 0.25)
    np.testing.assert_array_equal(steps.data, [0, 0.25, 0.5, 0.75])
    assert steps.dtype == np.float32
    assert cr.arange(2, 8, 2, dtype=cr.float64).dtype == np.float64
    e = cr.eye(3)
    assert e.dtype == np.float32
    np.testing.assert_array_equal(e.data, np.eye(3))
    assert cr.eye(2, 4).shape == (2, 4)


@pytest.mark.parametrize("factory", [cr.randn, cr.rand])
def test_random_factories_are_reproducible(factory):
    a, b = factory(3, 4, seed=42), factory(3, 4, seed=42)
    assert a.shape == (3, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, factory(3, 4, seed=43).data)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    first, again = factory(5, seed=g1), factory(5, seed=g2)
    np.testing.assert_array_equal(first.data, again.data)
    assert not np.array_equal(first.data, factory(5, seed=g1).data)  # the Generator moved on
    assert factory((2, 2), seed=0, dtype=cr.float64).dtype == np.float64
    assert factory(2, seed=0, requires_grad=True).requires_grad


def test_rand_is_uniform_in_unit_interval_and_randn_is_standard_normal():
    u = cr.rand(10_000, seed=0).data
    assert u.min() >= 0.0 and u.max() < 1.0
    n = cr.randn(10_000, seed=0).data
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05


# ----- dtypes ----------------------------------------------------------------------------------
def test_python_floats_become_float32_and_numpy_keeps_its_dtype():
    assert cr.tensor(1.5).dtype == np.float32
    assert cr.tensor([[1.0, 2.0]]).dtype == np.float32
    assert cr.tensor(np.array([1.0, 2.0])).dtype == np.float64
    assert cr.tensor(np.float64(1.0)).dtype == np.float64
    assert cr.tensor(np.ones(2, np.float32)).dtype == np.float32
    for dtype in (cr.float64, np.float64, "float64"):
        assert cr.tensor([1.0], dtype=dtype).dtype == np.float64
    assert cr.tensor([1, 2], dtype=cr.float32).dtype == np.float32


def test_integers_stay_integers_and_cannot_require_grad():
    assert cr.tensor([1, 2, 3]).dtype.kind == "i"
    assert cr.tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert cr.tensor([True, False]).dtype == np.bool_
    with pytest.raises(cr.DTypeError):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(cr.DTypeError, match="int"):
        cr.zeros(2, dtype=cr.int64, requires_grad=True)
    with pytest.raises(cr.DTypeError):
        cr.tensor(np.array([True]), requires_grad=True)
    with pytest.raises(cr.DTypeError):
        cr.arange(3).requires_grad_()
    with pytest.raises(TypeError):  # DTypeError is also a TypeError
        cr.tensor([1], requires_grad=True)


def test_tensor_copies_its_data():
    source = np.array([1.0, 2.0])
    t = cr.tensor(source)
    source[0] = 100.0
    assert t.data[0] == 1.0


# ----- attributes ------------------------------------------------------------------------------
def test_attributes():
    values = np.arange(6.0).reshape(2, 3)
    t = cr.tensor(values, requires_grad=True, name="w")
    assert isinstance(t.data, np.ndarray)
    np.testing.assert_array_equal(t.data, values)
    assert t.grad is None and t.requires_grad and t.name == "w"
    assert (t.shape, t.dtype, t.ndim, t.size) == ((2, 3), np.float64, 2, 6)
    np.testing.assert_array_equal(t.numpy(), values)
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.T.data, values.T)
    assert t.tolist() == values.tolist()
    assert t.is_leaf and t.grad_fn is None


def test_item_gives_a_python_number():
    item = cr.tensor([[2.5]]).item()
    assert item == 2.5 and type(item) is float
    assert type(cr.tensor(3).item()) is int
    assert float(cr.tensor(np.float64(0.25))) == 0.25


def test_detach_cuts_the_gradient_flow():
    x = cr.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    np.testing.assert_array_equal(d.data, x.data)
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad, x.data)  # only through the second factor
    assert d.grad is None


def test_repr_shows_values_grad_state_and_name():
    leaf = cr.tensor([1.5, -2.0], requires_grad=True, name="w")
    text = repr(leaf)
    assert "1.5" in text and "-2." in text
    assert "requires_grad=True" in text and "'w'" in text
    product = leaf * 2.0
    assert "grad_fn=<Multiply>" in repr(product) and "3." in repr(product)
    assert "requires_grad" not in repr(cr.tensor([1.0]))
    assert "float64" in repr(cr.tensor(np.zeros(2)))
    assert repr(cr.tensor(2.0)).startswith("tensor(")
    assert "grad_fn=<Add>" in repr(leaf + leaf)


# ----- comparisons and NumPy interplay -------------------------------------------------------
COMPARISONS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@pytest.mark.parametrize("name", COMPARISONS)
def test_comparisons_give_boolean_tensors_outside_the_graph(name):
    compare = COMPARISONS[name]
    x = cr.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    other = np.array([2.0, 2.0, 2.0])
    for right in (other, cr.tensor(other), 2.0):
        result = compare(x, right)
        assert isinstance(result, cr.Tensor) and result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        np.testing.assert_array_equal(result.data, compare(x.data, other))


def test_tensors_stay_hashable_despite_elementwise_equality():
    a, b = cr.tensor([1.0]), cr.tensor([1.0])
    assert len({a, b}) == 2 and {a: 1}[a] == 1


REFLECTED = {
    "+": lambda a, x: a + x, "-": lambda a, x: a - x, "*": lambda a, x: a * x,
    "/": lambda a, x: a / x, "**": lambda a, x: a**x, "@": lambda a, x: a @ x,
}


@pytest.mark.parametrize("name", REFLECTED)
def test_ndarray_on_the_left_gives_a_tensor(name):
    op = REFLECTED[name]
    a = np.array([[1.0, 2.0], [3.0, 0.5]])
    x = cr.tensor(np.array([[0.5, 1.5], [2.0, 1.0]]), requires_grad=True)
    result = op(a, x)
    assert isinstance(result, cr.Tensor) and result.requires_grad
    np.testing.assert_allclose(result.data, op(a, x.data))
    result.sum().backward()
    assert x.grad.shape == x.shape


def test_len_iteration_and_asarray():
    x = cr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(r, cr.Tensor) and r.shape == (2,) for r in rows)
    np.testing.assert_array_equal(rows[1].data, [2.0, 3.0])
    sum(rows).sum().backward()  # each row is differentiable
    np.testing.assert_array_equal(x.grad, np.ones((3, 2)))
    with pytest.raises(TypeError):
        len(cr.tensor(1.0))
    array = np.asarray(x)
    assert isinstance(array, np.ndarray) and array.dtype == np.float64
    np.testing.assert_array_equal(array, x.data)
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert np.array(cr.tensor([1.0, 2.0])).dtype == np.float32


def test_truth_value():
    assert bool(cr.tensor([3.0])) and not bool(cr.tensor(0.0))
    with pytest.raises(cr.ChainruleError, match="ambiguous"):
        bool(cr.tensor([1.0, 2.0]))
