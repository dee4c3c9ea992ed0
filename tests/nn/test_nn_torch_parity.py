"""The layers, activations and losses against PyTorch's, in float64: same values, same
gradients. Skipped where PyTorch is not installed."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RTOL, ATOL = 1e-10, 1e-12


def pair(values):
    """The same float64 values as a chainrule leaf and a torch leaf."""
    return cr.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)


def assert_close(ours, theirs, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=rtol, atol=atol)


def run_both(ours_fn, torch_fn, *arrays, upstream=None, rtol=RTOL, atol=ATOL):
    """Forward and backward (with the same upstream gradient) through both libraries."""
    ours_in, torch_in = zip(*(pair(a) for a in arrays))
    ours_out, torch_out = ours_fn(*ours_in), torch_fn(*torch_in)
    assert_close(ours_out.data, torch_out, rtol, atol)
    if upstream is None:
        upstream = np.random.default_rng(9).standard_normal(ours_out.shape)
    ours_out.backward(upstream)
    torch_out.backward(torch.tensor(upstream))
    for a, b in zip(ours_in, torch_in):
        assert_close(a.grad, b.grad, rtol, atol)


def randn(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def test_linear_with_copied_weights():
    ours = nn.Linear(5, 3, dtype=np.float64, generator=0)
    theirs = torch.nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    x = randn(4, 2, 5)
    ours_x, torch_x = pair(x)
    ours_out, torch_out = ours(ours_x), theirs(torch_x)
    assert_close(ours_out.data, torch_out)
    upstream = randn(4, 2, 3, seed=1)
    ours_out.backward(upstream)
    torch_out.backward(torch.tensor(upstream))
    assert_close(ours_x.grad, torch_x.grad)
    assert_close(ours.weight.grad, theirs.weight.grad)
    assert_close(ours.bias.grad, theirs.bias.grad)


def test_linear_init_has_pytorchs_scale():
    # Different generators, same distribution: compare the spread of a large layer.
    torch.manual_seed(0)
    theirs = torch.nn.Linear(256, 2000).weight.detach().numpy()
    ours = nn.Linear(256, 2000, generator=0).weight.data
    assert abs(ours.std() - theirs.std()) < 0.01 * theirs.std()
    assert abs(np.abs(ours).max() - np.abs(theirs).max()) < 1e-3 * np.abs(theirs).max()


ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu),
    "leaky_relu(0.2)": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": (F.elu, TF.elu),
    "elu(alpha=0.7)": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "gelu": (F.gelu, TF.gelu),
    "gelu(tanh)": (lambda x: F.gelu(x, approximate="tanh"),
                   lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softmax": (lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=0), lambda x: TF.log_softmax(x, dim=0)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation(name):
    ours, theirs = ACTIVATIONS[name]
    x = randn(6, 7, scale=3.0)
    x[0, :4] = [0.0, 30.0, -30.0, 1e-8]  # zero (the kink) and saturated inputs too
    run_both(ours, theirs, x)


@pytest.mark.parametrize("name", ["gelu", "elu", "silu", "sigmoid", "tanh", "gelu(tanh)"])
def test_activation_second_derivative(name):
    ours, theirs = ACTIVATIONS[name]
    x = randn(10, seed=3, scale=2.0)
    a, b = pair(x)
    (ga,) = cr.autograd.grad(ours(a).sum(), a, create_graph=True)
    (gb,) = torch.autograd.grad(theirs(b).sum(), b, create_graph=True)
    assert_close(ga.data, gb)
    ga.sum().backward()
    gb.sum().backward()
    assert_close(a.grad, b.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(reduction):
    logits, target = randn(8, 5, scale=4.0), np.random.default_rng(1).integers(0, 5, 8)
    run_both(lambda x: F.cross_entropy(x, target, reduction),
             lambda x: TF.cross_entropy(x, torch.tensor(target), reduction=reduction), logits,
             upstream=None if reduction == "none" else np.array(1.0))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    upstream = None if reduction == "none" else np.array(1.0)
    run_both(lambda a, b: F.mse_loss(a, b, reduction),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction),
             randn(4, 3), randn(4, 3, seed=1), upstream=upstream)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits(reduction):
    logits = randn(5, 3, scale=5.0)
    logits[0] = [0.0, 1e4, -1e4]
    target = np.random.default_rng(2).uniform(0, 1, (5, 3))
    upstream = None if reduction == "none" else np.array(1.0)
    run_both(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction),
             lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction=reduction),
             logits, target, upstream=upstream)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_hinge_loss_is_multi_margin_loss_times_classes(reduction, margin):
    # PyTorch's multi_margin_loss divides the lecture's sum over classes by C.
    n, c = 7, 4
    scores, target = randn(n, c, seed=5), np.random.default_rng(5).integers(0, c, n)
    upstream = None if reduction == "none" else np.array(1.0)
    run_both(lambda s: F.hinge_loss(s, target, margin, reduction),
             lambda s: c * TF.multi_margin_loss(s, torch.tensor(target), margin=margin,
                                                reduction=reduction),
             scores, upstream=upstream)


def test_mlp_matches_torch_sequential():
    ours = nn.MLP(4, [6, 5], 3, activation="gelu", seed=0, dtype=np.float64)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 5),
                                 torch.nn.GELU(), torch.nn.Linear(5, 3)).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x, y = randn(8, 4), np.random.default_rng(0).integers(0, 3, 8)
    loss = F.cross_entropy(ours(x), y)
    torch_loss = TF.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    assert_close(loss.data, torch_loss)
    loss.backward()
    torch_loss.backward()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad)
