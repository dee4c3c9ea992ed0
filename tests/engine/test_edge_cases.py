"""Edge cases of the engine that once went wrong."""

import numpy as np
import pytest

import chainrule as cr


def test_power_gradient_of_the_exponent_is_zero_where_the_base_is_zero():
    x = np.array([0.0, 2.0])
    y = cr.tensor([2.0, 0.5], requires_grad=True, dtype=cr.float64)
    (x ** y).sum().backward()
    np.testing.assert_allclose(y.grad, [0.0, 2.0 ** 0.5 * np.log(2.0)])


def test_power_with_exponent_zero_has_zero_gradient_at_zero():
    x = cr.tensor([0.0, 3.0], requires_grad=True, dtype=cr.float64)
    (x ** 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_grad_needs_one_grad_output_per_output():
    a = cr.tensor(1.0, requires_grad=True)
    with pytest.raises(cr.GraphError, match="2 outputs but 1 grad_outputs"):
        cr.autograd.grad([(a * 2).sum(), (a * 3).sum()], [a], grad_outputs=[None])


def test_set_grad_enabled_works_as_a_plain_call():
    cr.set_grad_enabled(False)
    try:
        assert not cr.is_grad_enabled()
        assert not (cr.tensor(1.0, requires_grad=True) * 2).requires_grad
    finally:
        cr.set_grad_enabled(True)
    assert cr.is_grad_enabled()


def test_updating_a_tensor_in_place_keeps_the_graph_that_used_it_correct():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    a = cr.tensor([3.0, 4.0])
    y = (w * a).sum()
    a += 10  # after a was used: the graph still holds the values it saw
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])
    np.testing.assert_array_equal(a.data, [13.0, 14.0])


def test_in_place_update_of_a_leaf_requires_no_grad():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(cr.GraphError, match="no_grad"):
        w -= 1.0
    with cr.no_grad():
        w -= 1.0
    assert w.requires_grad and w.dtype == np.float32
    np.testing.assert_array_equal(w.data, [0.0, 1.0])


def test_item_assignment_is_refused_with_a_hint():
    with pytest.raises(cr.GraphError, match="no_grad"):
        cr.tensor([1.0, 2.0])[0] = 5.0


@pytest.mark.parametrize("data", ["abc", [[1.0, 2.0], [3.0]]])
def test_non_numeric_or_ragged_data_is_refused(data):
    with pytest.raises(cr.DTypeError):
        cr.tensor(data)


def test_no_grad_decorates_a_generator():
    w = cr.tensor([1.0], requires_grad=True)

    @cr.no_grad()
    def predictions():
        for k in range(3):
            yield w * k

    outputs = list(predictions())
    assert len(outputs) == 3 and not any(o.requires_grad for o in outputs)
    assert cr.is_grad_enabled() and (w * 2).requires_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["row", "column", "1-d", "0-d", "3-d"])
def test_relu_gives_the_bits_of_max_x_0_with_nan_inf_and_signed_zeros(dtype, layout):
    special = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, -1.0, 1.0, 1e-45, -1e-45, -3.5, 2.5]
    values = np.array(special * 6, dtype=dtype).reshape(8, 9)
    x = {"row": values, "column": np.asfortranarray(values), "1-d": values.ravel(),
         "0-d": values[0, 2], "3-d": values.reshape(2, 4, 9)}[layout]
    t = cr.tensor(x, requires_grad=True, dtype=dtype)
    out = cr.relu(t)
    want = np.maximum(x, 0)
    assert out.data.dtype == dtype
    assert np.asarray(out.data).tobytes() == np.asarray(want).tobytes()
    out.backward(np.ones(np.shape(x), dtype))
    np.testing.assert_array_equal(t.grad, (np.asarray(x) > 0).astype(dtype))


def test_relu_of_an_integer_array_stays_integer():
    out = cr.relu(cr.tensor(np.array([-2, 0, 3])))
    assert out.data.dtype.kind == np.array([-2, 0, 3]).dtype.kind
    np.testing.assert_array_equal(out.data, [0, 0, 3])
