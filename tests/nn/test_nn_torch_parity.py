"""The layers, activations and losses against PyTorch's, in float64: same values, same
gradients, same second derivatives.

PyTorch's side is recorded in tests/fixtures and also run live where torch is installed (see
tests/torch_reference.py), so these checks run on every machine."""

import numpy as np
import pytest
from torch_reference import Cases, assert_matches, torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

TF = torch.nn.functional if torch is not None else None
RTOL, ATOL = 1e-10, 1e-12
CASES = Cases("nn")


def randn(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def forward_backward(lib, fn, *arrays, upstream=None):
    """Forward, and backward with ``upstream`` (default: seeded random), through ``cr`` or
    ``torch``: {"value", "grad0", ...}."""
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    if upstream is None:
        upstream = np.random.default_rng(9).standard_normal(tuple(out.shape))
    out.backward(upstream if lib is cr else torch.tensor(upstream))
    value = out.data if lib is cr else out
    return {"value": value, **{f"grad{i}": leaf.grad for i, leaf in enumerate(leaves)}}


def check(case, params, ours_fn, *arrays, upstream=None):
    assert_matches(CASES.expected(case, **params),
                   forward_backward(cr, ours_fn, *arrays, upstream=upstream), RTOL, ATOL)


# ----- Linear -------------------------------------------------------------------------------
def linear_inputs():
    return {"weight": randn(3, 5, seed=2), "bias": randn(3, seed=3), "x": randn(4, 2, 5),
            "upstream": randn(4, 2, 3, seed=1)}


@CASES.case()
def linear():
    a = linear_inputs()
    layer = torch.nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(a["weight"]))
        layer.bias.copy_(torch.tensor(a["bias"]))
    x = torch.tensor(a["x"], requires_grad=True)
    out = layer(x)
    out.backward(torch.tensor(a["upstream"]))
    return {"value": out, "grad_x": x.grad, "grad_weight": layer.weight.grad,
            "grad_bias": layer.bias.grad}


def test_linear_with_copied_weights():
    a = linear_inputs()
    layer = nn.Linear(5, 3, dtype=np.float64, generator=0)
    layer.load_state_dict({"weight": a["weight"], "bias": a["bias"]})
    x = cr.tensor(a["x"], requires_grad=True)
    out = layer(x)
    out.backward(a["upstream"])
    assert_matches(CASES.expected(linear), {"value": out.data, "grad_x": x.grad,
                                            "grad_weight": layer.weight.grad,
                                            "grad_bias": layer.bias.grad}, RTOL, ATOL)


@CASES.case()
def linear_init_spread():
    torch.manual_seed(0)
    weight = torch.nn.Linear(256, 2000).weight.detach().double()
    return {"std": weight.std(), "abs_max": weight.abs().max()}


def test_linear_init_has_pytorchs_scale():
    # Different generators, same distribution: compare the spread of a large layer.
    ours = nn.Linear(256, 2000, generator=0).weight.data
    for source, theirs in CASES.expected(linear_init_spread):
        assert abs(ours.std() - theirs["std"]) < 0.01 * theirs["std"], source
        assert abs(np.abs(ours).max() - theirs["abs_max"]) < 1e-3 * theirs["abs_max"], source


# ----- activations --------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": (F.relu, lambda x: TF.relu(x)),
    "leaky_relu": (F.leaky_relu, lambda x: TF.leaky_relu(x)),
    "leaky_relu(0.2)": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": (F.elu, lambda x: TF.elu(x)),
    "elu(alpha=0.7)": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "gelu": (F.gelu, lambda x: TF.gelu(x)),
    "gelu(tanh)": (lambda x: F.gelu(x, approximate="tanh"),
                   lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, lambda x: TF.silu(x)),
    "sigmoid": (F.sigmoid, lambda x: torch.sigmoid(x)),
    "tanh": (F.tanh, lambda x: torch.tanh(x)),
    "softmax": (lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=0), lambda x: TF.log_softmax(x, dim=0)),
}
SMOOTH = ["gelu", "elu", "silu", "sigmoid", "tanh", "gelu(tanh)"]


def activation_input():
    x = randn(6, 7, scale=3.0)
    x[0, :4] = [0.0, 30.0, -30.0, 1e-8]  # zero (the kink) and saturated inputs too
    return x


@CASES.case(name=list(ACTIVATIONS))
def activation(name):
    return forward_backward(torch, ACTIVATIONS[name][1], activation_input())


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation(name):
    check(activation, {"name": name}, ACTIVATIONS[name][0], activation_input())


def first_and_second_derivative(lib, fn):
    """d/dx of sum(fn(x)), then d/dx of the sum of that (the second derivative)."""
    x = lib.tensor(randn(10, seed=3, scale=2.0), requires_grad=True)
    (grad,) = lib.autograd.grad(fn(x).sum(), x, create_graph=True)
    grad.sum().backward()
    return {"grad": grad.data if lib is cr else grad, "second": x.grad}


@CASES.case(name=SMOOTH)
def activation_second_derivative(name):
    return first_and_second_derivative(torch, ACTIVATIONS[name][1])


@pytest.mark.parametrize("name", SMOOTH)
def test_activation_second_derivative(name):
    assert_matches(CASES.expected(activation_second_derivative, name=name),
                   first_and_second_derivative(cr, ACTIVATIONS[name][0]), RTOL, ATOL)


# ----- losses -------------------------------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]


def scalar_upstream(reduction):
    return None if reduction == "none" else np.array(1.0)


def cross_entropy_inputs():
    return randn(8, 5, scale=4.0), np.random.default_rng(1).integers(0, 5, 8)


@CASES.case(reduction=REDUCTIONS)
def cross_entropy(reduction):
    logits, target = cross_entropy_inputs()
    return forward_backward(
        torch, lambda x: TF.cross_entropy(x, torch.tensor(target), reduction=reduction), logits,
        upstream=scalar_upstream(reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(reduction):
    logits, target = cross_entropy_inputs()
    check(cross_entropy, {"reduction": reduction},
          lambda x: F.cross_entropy(x, target, reduction), logits,
          upstream=scalar_upstream(reduction))


@CASES.case(reduction=REDUCTIONS)
def mse_loss(reduction):
    return forward_backward(torch, lambda a, b: TF.mse_loss(a, b, reduction=reduction),
                            randn(4, 3), randn(4, 3, seed=1), upstream=scalar_upstream(reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    check(mse_loss, {"reduction": reduction}, lambda a, b: F.mse_loss(a, b, reduction),
          randn(4, 3), randn(4, 3, seed=1), upstream=scalar_upstream(reduction))


def bce_inputs():
    logits = randn(5, 3, scale=5.0)
    logits[0] = [0.0, 1e4, -1e4]
    return logits, np.random.default_rng(2).uniform(0, 1, (5, 3))


@CASES.case(reduction=REDUCTIONS)
def binary_cross_entropy_with_logits(reduction):
    return forward_backward(
        torch, lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction=reduction),
        *bce_inputs(), upstream=scalar_upstream(reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    check(binary_cross_entropy_with_logits, {"reduction": reduction},
          lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction), *bce_inputs(),
          upstream=scalar_upstream(reduction))


HINGE_CLASSES = 4


def hinge_inputs():
    return randn(7, HINGE_CLASSES, seed=5), np.random.default_rng(5).integers(0, HINGE_CLASSES, 7)


@CASES.case(reduction=REDUCTIONS, margin=[1.0, 0.5])
def multi_margin_loss_times_classes(reduction, margin):
    # PyTorch's multi_margin_loss divides the lecture's sum over classes by C.
    scores, target = hinge_inputs()
    return forward_backward(
        torch, lambda s: HINGE_CLASSES * TF.multi_margin_loss(
            s, torch.tensor(target), margin=margin, reduction=reduction),
        scores, upstream=scalar_upstream(reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_hinge_loss_is_multi_margin_loss_times_classes(reduction, margin):
    scores, target = hinge_inputs()
    check(multi_margin_loss_times_classes, {"reduction": reduction, "margin": margin},
          lambda s: F.hinge_loss(s, target, margin, reduction), scores,
          upstream=scalar_upstream(reduction))


# ----- a whole MLP --------------------------------------------------------------------------
def mlp_inputs():
    """Weights named as both libraries name them (torch.nn.Sequential's indices), data."""
    shapes = {"0.weight": (6, 4), "0.bias": (6,), "2.weight": (5, 6), "2.bias": (5,),
              "4.weight": (3, 5), "4.bias": (3,)}
    rng = np.random.default_rng(4)
    state = {name: rng.standard_normal(shape) * 0.5 for name, shape in shapes.items()}
    return state, randn(8, 4), np.random.default_rng(0).integers(0, 3, 8)


@CASES.case()
def mlp_gelu():
    state, x, y = mlp_inputs()
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 5),
                                torch.nn.GELU(), torch.nn.Linear(5, 3)).double()
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    loss = TF.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    return {"loss": loss, **{f"grad {k}": p.grad for k, p in model.named_parameters()}}


def test_mlp_matches_torch_sequential():
    state, x, y = mlp_inputs()
    model = nn.MLP(4, [6, 5], 3, activation="gelu", seed=0, dtype=np.float64)
    model.load_state_dict(state)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    assert_matches(CASES.expected(mlp_gelu),
                   {"loss": loss.data, **{f"grad {k}": p.grad
                                          for k, p in model.named_parameters()}}, RTOL, ATOL)
