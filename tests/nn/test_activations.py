"""The lecture's activation functions, in functional and module form.

Each is checked against its mathematical definition (computed with ``math`` element by
element), against centered differences in float64 on random shapes, for finite values
and gradients at extreme float32 inputs, and, for the smooth ones, for correct second
derivatives through ``create_graph=True``.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule import nn
from chainrule.gradcheck import gradcheck
from chainrule.nn import functional as F

EXAMPLES = settings(max_examples=30, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
seeds = st.integers(0, 2**32 - 1)


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _gelu_tanh(x):
    return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


# name -> (functional form, module, scalar definition, derivative, has a kink at 0)
ACTIVATIONS = {
    "relu": (F.relu, nn.ReLU(), lambda x: max(0.0, x), lambda x: float(x > 0), True),
    "leaky_relu": (F.leaky_relu, nn.LeakyReLU(), lambda x: x if x > 0 else 0.01 * x,
                   lambda x: 1.0 if x > 0 else 0.01, True),
    "leaky_relu(0.1)": (lambda x: F.leaky_relu(x, 0.1), nn.LeakyReLU(0.1),
                        lambda x: max(0.1 * x, x), lambda x: 1.0 if x > 0 else 0.1, True),
    "elu": (F.elu, nn.ELU(), lambda x: x if x > 0 else math.expm1(x),
            lambda x: 1.0 if x > 0 else math.exp(x), True),
    "elu(alpha=0.5)": (lambda x: F.elu(x, alpha=0.5), nn.ELU(alpha=0.5),
                       lambda x: x if x > 0 else 0.5 * math.expm1(x),
                       lambda x: 1.0 if x > 0 else 0.5 * math.exp(x), True),
    "gelu": (F.gelu, nn.GELU(), lambda x: x * 0.5 * (1 + math.erf(x / math.sqrt(2))),
             lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
             + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi), False),
    "gelu(tanh)": (lambda x: F.gelu(x, approximate="tanh"), nn.GELU(approximate="tanh"),
                   _gelu_tanh, None, False),
    "silu": (F.silu, nn.SiLU(), lambda x: x * _sigmoid(x),
             lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))), False),
    "sigmoid": (F.sigmoid, nn.Sigmoid(), _sigmoid,
                lambda x: _sigmoid(x) * (1 - _sigmoid(x)), False),
    "tanh": (F.tanh, nn.Tanh(), math.tanh, lambda x: 1 - math.tanh(x) ** 2, False),
}


def elementwise(fn, values):
    return np.vectorize(fn, otypes=[np.float64])(values)


def draw(seed, shape, kink):
    """Standard normal values; for a function with a kink at 0, at least 0.05 away from it."""
    rng = np.random.default_rng(seed)
    if kink:
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.05, 3.0, shape)
    return 2 * rng.standard_normal(shape)


@pytest.mark.parametrize("name", ACTIVATIONS)
@EXAMPLES
@given(shape=shapes, seed=seeds)
def test_values_match_definition(name, shape, seed):
    functional, module, definition, _, _ = ACTIVATIONS[name]
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    expected = elementwise(definition, x)
    out = functional(cr.tensor(x))
    assert out.shape == shape and out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(module(cr.tensor(x)).data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
@EXAMPLES
@given(shape=shapes, seed=seeds)
def test_gradcheck(name, shape, seed):
    functional, _, _, _, kink = ACTIVATIONS[name]
    x = cr.tensor(draw(seed, shape, kink), requires_grad=True)
    assert gradcheck(functional, [x])


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if ACTIVATIONS[n][3] is not None])
def test_gradient_matches_derivative(name):
    functional, _, _, derivative, _ = ACTIVATIONS[name]
    x = cr.tensor(np.linspace(-4, 4, 41) + 0.01, requires_grad=True)  # avoids x = 0 exactly
    functional(x).sum().backward()
    np.testing.assert_allclose(x.grad, elementwise(derivative, x.data), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "leaky_relu(0.1)"])
def test_piecewise_linear_at_zero(name):
    # Value 0 at 0; the gradient there is the right-hand or left-hand slope, as in PyTorch.
    functional = ACTIVATIONS[name][0]
    x = cr.tensor(np.zeros(3), requires_grad=True)
    out = functional(x)
    out.sum().backward()
    assert np.all(out.data == 0)
    assert np.all(np.isfinite(x.grad))


def test_leaky_relu_default_slope_is_pytorchs():
    x = cr.tensor(np.array([-2.0, 3.0]))
    np.testing.assert_array_equal(F.leaky_relu(x).data, [-0.02, 3.0])
    assert nn.LeakyReLU().negative_slope == 0.01


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(cr.tensor([1.0]), approximate="fast")


EXTREME = np.array([-1e4, -1e3, -88.0, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 88.0, 1e3, 1e4],
                   dtype=np.float32)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_finite_and_silent_for_large_float32_inputs(name):
    functional = ACTIVATIONS[name][0]
    x = cr.tensor(EXTREME, requires_grad=True)
    # Underflow to 0 (e^-10000) is the right answer; overflow, 0/0 or division by 0 is not.
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        out = functional(x)
        out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "gelu", "gelu(tanh)", "silu"])
def test_relu_like_functions_pass_large_positive_inputs_through(name):
    functional = ACTIVATIONS[name][0]
    x = cr.tensor(np.array([1e3, 1e4], dtype=np.float32), requires_grad=True)
    out = functional(x)
    out.sum().backward()
    np.testing.assert_allclose(out.data, [1e3, 1e4], rtol=1e-6)
    np.testing.assert_allclose(x.grad, [1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturating_functions_have_vanishing_gradients(name):
    # The lecture's warning: at both ends the local gradient is (numerically) zero.
    functional = ACTIVATIONS[name][0]
    x = cr.tensor(np.array([-50.0, 50.0]), requires_grad=True)
    functional(x).sum().backward()
    assert np.all(np.abs(x.grad) < 1e-20)


# second derivatives: name -> f''(x)
SECOND = {
    "gelu": lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi) * (2 - x * x),
    "elu": lambda x: 0.0 if x > 0 else math.exp(x),
    "silu": lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (2 + x * (1 - 2 * _sigmoid(x))),
    "sigmoid": lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)),
    "tanh": lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2),
}


@pytest.mark.parametrize("name", SECOND)
def test_second_derivative(name):
    functional = ACTIVATIONS[name][0]
    x = cr.tensor(np.linspace(-3, 3, 13) + 0.05, requires_grad=True)
    (first,) = cr.autograd.grad(functional(x).sum(), x, create_graph=True)
    assert first.requires_grad
    (second,) = cr.autograd.grad(first.sum(), x)
    np.testing.assert_allclose(second.data, elementwise(SECOND[name], x.data),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", [*SECOND, "gelu(tanh)"])
def test_gradient_of_gradient_gradchecks(name):
    functional = ACTIVATIONS[name][0]
    x = cr.tensor(draw(7, (2, 3), kink=True), requires_grad=True)

    def first_derivative(x):
        return cr.autograd.grad(functional(x).sum(), x, create_graph=True)[0]

    assert gradcheck(first_derivative, [x])


# ----- softmax and log_softmax ------------------------------------------------------------
def softmax_reference(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@EXAMPLES
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), seed=seeds, data=st.data())
def test_softmax_and_log_softmax(shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    expected = softmax_reference(x, dim)
    np.testing.assert_allclose(F.softmax(cr.tensor(x), dim=dim).data, expected, rtol=1e-12)
    np.testing.assert_allclose(nn.Softmax(dim=dim)(cr.tensor(x)).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(cr.tensor(x), dim=dim).data, np.log(expected),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nn.LogSoftmax(dim=dim)(cr.tensor(x)).data, np.log(expected),
                               rtol=1e-10, atol=1e-12)
    t = cr.tensor(x, requires_grad=True)
    assert gradcheck(lambda t: F.softmax(t, dim=dim), [t])
    assert gradcheck(lambda t: F.log_softmax(t, dim=dim), [t])


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_finite_for_huge_float32_logits(fn):
    x = cr.tensor(np.array([[1e4, -1e4, 0.0], [3e4, 3e4, 3e4]], dtype=np.float32),
                  requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        out = fn(x)
        (out * cr.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))).sum().backward()
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad))
    probs = out.data if fn is F.softmax else np.exp(out.data)
    np.testing.assert_allclose(probs, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6, atol=1e-7)


def test_activation_modules_have_pytorch_reprs():
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.ELU()) == "ELU(alpha=1.0)"
    assert repr(nn.GELU(approximate="tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Sigmoid()) == "Sigmoid()" and repr(nn.Tanh()) == "Tanh()"
    assert set(nn.ACTIVATIONS) == {"relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid",
                                   "tanh"}


def test_activation_modules_have_no_parameters():
    for module in (nn.ReLU(), nn.LeakyReLU(), nn.ELU(), nn.GELU(), nn.SiLU(), nn.Sigmoid(),
                   nn.Tanh(), nn.Softmax(), nn.LogSoftmax()):
        assert list(module.parameters()) == []
