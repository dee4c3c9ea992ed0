"""The tools that check gradients: numerical_grad, rel_error and gradcheck."""

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import Function
from chainrule.gradcheck import gradcheck, numerical_grad, rel_error


# ----- numerical_grad --------------------------------------------------------------------------
def test_numerical_grad_of_a_sum_of_squares_is_2x():
    x = np.random.default_rng(0).standard_normal((3, 4))
    before = x.copy()
    grad = numerical_grad(lambda v: np.sum(v**2), x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(x, before)  # nudged in place and put back


def test_numerical_grad_of_a_tensor_function():
    x = cr.tensor(np.array([0.5, -1.0, 2.0]))
    grad = numerical_grad(lambda t: (t * t * t).sum(), x)
    np.testing.assert_allclose(grad, 3 * x.data**2, rtol=1e-8)


def test_numerical_grad_of_several_outputs_uses_the_upstream_weights():
    x = np.array([[1.0, 2.0], [3.0, -4.0]])
    upstream = np.array([[0.5, -1.0], [2.0, 1.5]])
    grad = numerical_grad(lambda v: np.tanh(v), x, upstream=upstream)
    np.testing.assert_allclose(grad, upstream * (1 - np.tanh(x) ** 2), rtol=1e-7, atol=1e-11)
    np.testing.assert_allclose(numerical_grad(np.exp, x), np.exp(x), rtol=1e-8)  # weights 1


def test_numerical_grad_is_a_centered_difference():
    # For x^3 the centered difference is exactly 3x^2 + h^2: a one-sided one is off by 3xh.
    x = np.array([2.0])
    h = 1e-3
    grad = numerical_grad(lambda v: v[0] ** 3, x, h=h)
    np.testing.assert_allclose(grad, [3 * 4.0 + h**2], rtol=1e-9)


def test_a_float32_tensor_is_evaluated_in_float64_and_restored():
    x = cr.tensor(np.array([0.1, 0.7, -0.3], dtype=np.float32), requires_grad=True)
    before = x.data.copy()
    seen = []

    def f(t):
        seen.append(t.dtype)
        return (t * t).sum()

    grad = numerical_grad(f, x)
    assert set(seen) == {np.dtype(np.float64)}
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.data, before)
    # In float32 a step of 1e-5 would lose most digits; in float64 the result is close.
    np.testing.assert_allclose(grad, 2 * before.astype(np.float64), rtol=1e-8)


def test_a_float32_array_is_refused():
    with pytest.raises(TypeError):
        numerical_grad(np.sum, np.ones(3, dtype=np.float32))


# ----- rel_error -------------------------------------------------------------------------------
def cs231n_rel_error(x, y):
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


@pytest.mark.parametrize("a, b", [
    (1.0, 1.0), (1.0, 2.0), (0.0, 0.0), (1e-9, 0.0), ([1.0, -3.0], [1.0, 3.0]),
    ([[1e-3, 2.0]], [[1.1e-3, 2.0]]), (-5.0, 5.0),
])
def test_rel_error_matches_the_cs231n_definition(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    value = rel_error(a, b)
    assert isinstance(value, float)
    assert value == pytest.approx(cs231n_rel_error(a, b), rel=1e-12, abs=0)
    assert rel_error(b, a) == value


def test_rel_error_known_values_and_inputs():
    assert rel_error(1.0, 2.0) == pytest.approx(1 / 3)
    assert rel_error(0.0, 0.0) == 0.0
    assert rel_error(-5.0, 5.0) == 1.0
    assert rel_error(1e-9, 0.0) == pytest.approx(0.1)  # below 1e-8 the floor takes over
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    assert rel_error(cr.tensor(a), cr.tensor(b)) == pytest.approx(cs231n_rel_error(a, b))


# ----- gradcheck -----------------------------------------------------------------------------
def test_gradcheck_passes_correct_gradients():
    rng = np.random.default_rng(2)
    x = cr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    constant = rng.standard_normal(2)
    assert gradcheck(lambda x, w, c: cr.log_softmax(cr.tanh(x @ w) + c), [x, w, constant])
    assert gradcheck(lambda x: (x * x).sum(), x) is True
    assert gradcheck(lambda x, w: cr.relu(x) @ w, [x, w], upstream=np.ones((3, 2)))


class WrongSquare(Function):
    """x * x with a backward that forgets the factor 2."""

    name = "wrong_square"
    symbol = "sq"

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, upstream):
        (a,) = ctx.inputs
        return upstream * a


def test_gradcheck_reports_a_wrong_backward():
    values = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]])
    b = cr.tensor(np.ones(3), requires_grad=True)
    w = cr.tensor(values, requires_grad=True, name="w")

    def f(b, w):
        return WrongSquare.apply(w) + b

    with pytest.raises(cr.GradcheckError) as info:
        gradcheck(f, [b, w], upstream=np.ones((2, 3)))
    message = str(info.value)
    analytical = values  # what the wrong rule gives
    numerical = numerical_grad(lambda _: f(b, w), w, h=1e-6, upstream=np.ones((2, 3)))
    worst = np.unravel_index(np.argmax(np.abs(analytical - numerical)), values.shape)
    assert "input 1" in message and "'w'" in message and "(2, 3)" in message
    assert f"({worst[0]}, {worst[1]})" in message
    assert f"{analytical[worst]:.10g}" in message and f"{numerical[worst]:.10g}" in message
    reported = float(re.search(r"relative error ([0-9.e+-]+)", message).group(1))
    assert reported == pytest.approx(rel_error(analytical[worst], numerical[worst]), rel=1e-2)
    assert reported == pytest.approx(1 / 3, rel=1e-2)
    assert isinstance(info.value, AssertionError)


def test_gradcheck_checks_only_inputs_that_require_grad():
    w = cr.tensor(np.array([1.0, 2.0]))  # the wrong rule is never asked for its gradient
    x = cr.tensor(np.array([3.0, 4.0]), requires_grad=True)
    assert gradcheck(lambda w, x: WrongSquare.apply(w) * x, [w, x])
    with pytest.raises(cr.GradcheckError, match="input 0"):
        gradcheck(lambda x: WrongSquare.apply(x), [x])
