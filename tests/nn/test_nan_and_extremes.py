"""NaN in gives NaN out (never a loss of 0), and gradients stay finite at huge inputs."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F


@pytest.mark.parametrize("loss", [F.hinge_loss, F.cross_entropy], ids=["hinge", "softmax"])
@pytest.mark.parametrize("column", [0, 1], ids=["correct class", "other class"])
def test_nan_scores_give_a_nan_loss_and_gradient(loss, column):
    scores = np.array([[0.3, 1.0, 0.5], [0.2, 0.1, 0.0]], np.float32)
    scores[0, column] = np.nan
    s = cr.tensor(scores, requires_grad=True)
    value = loss(s, np.array([0, 1]))
    value.backward()
    assert np.isnan(value.item())
    assert np.isnan(s.grad[0]).all()
    assert np.isfinite(s.grad[1]).all()  # the other example is untouched


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf in NumPy, on purpose
def test_hinge_of_an_infinitely_wrong_score_is_infinite():
    scores = cr.tensor(np.array([[-np.inf, 1.0]], np.float32), requires_grad=True)
    assert F.hinge_loss(scores, np.array([0])).item() == np.inf


def test_hinge_on_finite_scores_is_unchanged():
    torch = pytest.importorskip("torch")
    scores = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    target = np.array([0, 1, 2, 3, 0, 1])
    s = cr.tensor(scores, requires_grad=True)
    F.hinge_loss(s, target).backward()
    t = torch.tensor(scores, requires_grad=True)
    torch.nn.functional.multi_margin_loss(t, torch.tensor(target), reduction="sum").div(
        6).mul(4).backward()  # torch divides by C as well; the lecture's loss does not
    np.testing.assert_allclose(s.grad, t.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_gelu_gradient_is_finite_for_huge_inputs(dtype):
    values = np.array([1e20, -1e20, 3e38, -3e38, 1e5, -1e5, 50.0, -50.0], dtype)
    x = cr.tensor(values, requires_grad=True)
    y = F.gelu(x, approximate="tanh")
    y.sum().backward()
    assert np.isfinite(x.grad).all()
    np.testing.assert_array_equal(x.grad, (values > 0).astype(dtype))
    np.testing.assert_array_equal(y.data, np.where(values > 0, values, 0))


def test_tanh_gelu_matches_torch_where_it_matters():
    torch = pytest.importorskip("torch")
    values = np.linspace(-12, 12, 97)
    x = cr.tensor(values, requires_grad=True)
    F.gelu(x, approximate="tanh").sum().backward()
    t = torch.tensor(values, requires_grad=True)
    torch.nn.functional.gelu(t, approximate="tanh").sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-7, atol=1e-12)
