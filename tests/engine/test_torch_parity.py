"""The same expressions through chainrule and PyTorch, in float64: values and gradients.

PyTorch's side is recorded in tests/fixtures and also run live where torch is installed (see
tests/torch_reference.py), so these checks run on every machine. chainrule's ``var``/``std``
use NumPy's ``ddof=0``; PyTorch is asked for ``correction=0``.
"""

import numpy as np
import pytest
from torch_reference import Cases, assert_matches, torch

import chainrule as cr

RTOL, ATOL = 1e-10, 1e-12
SEEDS = [0, 1, 2]
CASES = Cases("engine")


def forward_backward(lib, fn, arrays, upstream_seed=99):
    """Forward, and backward with a seeded random upstream, through ``cr`` or ``torch``:
    {"value", "grad0", "grad1", ...}."""
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    upstream = np.random.default_rng(upstream_seed).standard_normal(tuple(out.shape))
    out.backward(upstream if lib is cr else torch.tensor(upstream))
    if lib is cr:
        assert all(leaf.grad.dtype == np.float64 for leaf in leaves)
    value = out.data if lib is cr else out
    return {"value": value, **{f"grad{i}": leaf.grad for i, leaf in enumerate(leaves)}}


def check(case, params, ours_fn, arrays):
    """chainrule's value and gradients against PyTorch's for ``case(**params)``."""
    assert_matches(CASES.expected(case, **params), forward_backward(cr, ours_fn, arrays),
                   RTOL, ATOL)


def distinct(rng, shape):
    """Values at least 0.3 apart: no ties for max/min."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * 0.5 + rng.uniform(-0.1, 0.1, size)).reshape(shape)


def mlp_inputs(seed):
    rng = np.random.default_rng(seed)
    n, d, h, c = 8, 5, 7, 4
    labels = rng.integers(0, c, n)
    arrays = [rng.standard_normal((n, d)), rng.standard_normal((d, h)) * 0.5,
              rng.standard_normal(h) * 0.1, rng.standard_normal((h, c)) * 0.5,
              rng.standard_normal(c) * 0.1]
    return labels, arrays


@CASES.case(seed=SEEDS)
def mlp_loss(seed):
    labels, arrays = mlp_inputs(seed)

    def loss(x, w1, b1, w2, b2):
        scores = torch.relu(x @ w1 + b1) @ w2 + b2
        return -torch.log_softmax(scores, dim=1)[torch.arange(len(labels)),
                                                 torch.tensor(labels)].mean()

    return forward_backward(torch, loss, arrays)


@pytest.mark.parametrize("seed", SEEDS)
def test_mlp_loss(seed):
    labels, arrays = mlp_inputs(seed)

    def loss(x, w1, b1, w2, b2):
        scores = cr.relu(x @ w1 + b1) @ w2 + b2
        return -cr.log_softmax(scores, axis=1)[np.arange(len(labels)), labels].mean()

    check(mlp_loss, {"seed": seed}, loss, arrays)


# name: (chainrule's expression, PyTorch's, how to draw its (2, 3, 4) input)
EXPRESSIONS = {
    "softmax": (lambda x: cr.softmax(x, axis=0), lambda x: torch.softmax(x, dim=0), distinct),
    "log_softmax": (lambda x: cr.log_softmax(x * 3), lambda x: torch.log_softmax(x * 3, -1),
                    distinct),
    "logsumexp": (lambda x: cr.logsumexp(x, axis=(0, 2), keepdims=True),
                  lambda x: torch.logsumexp(x, dim=(0, 2), keepdim=True), distinct),
    "var": (lambda x: x.var(axis=1), lambda x: x.var(dim=1, correction=0), distinct),
    "var ddof=1": (lambda x: x.var(axis=(0, 1), ddof=1),
                   lambda x: x.var(dim=(0, 1), unbiased=True), distinct),
    "std": (lambda x: cr.std(x, axis=-1, keepdims=True),
            lambda x: x.std(dim=-1, correction=0, keepdim=True), distinct),
    "max": (lambda x: x.max(axis=1), lambda x: x.amax(dim=1), distinct),
    "min": (lambda x: cr.min(x), lambda x: x.amin(), distinct),
    "mean, sum": (lambda x: x.mean(axis=0) * x.sum(axis=(1, 2), keepdims=True),
                  lambda x: x.mean(dim=0) * x.sum(dim=(1, 2), keepdim=True), distinct),
    "indexing with repeats": (lambda x: x[[0, 0, 1, 0], ::-1][:, [2, 2, 0]],
                              lambda x: x[[0, 0, 1, 0]].flip(1)[:, [2, 2, 0]], distinct),
    "integer arrays": (lambda x: x[np.array([1, 1, 0]), :, np.array([3, 3, 2])],
                       lambda x: x[[1, 1, 0], :, [3, 3, 2]], distinct),
    "boolean mask": (lambda x: x[x.data > 0] ** 2, lambda x: x[x.detach() > 0] ** 2, distinct),
    "elementwise": (lambda x: cr.sigmoid(x) * cr.tanh(x) + cr.exp(-abs(x)) / cr.sqrt(x * x + 1),
                    lambda x: torch.sigmoid(x) * torch.tanh(x)
                    + torch.exp(-x.abs()) / torch.sqrt(x * x + 1), distinct),
    "clip, relu, log": (lambda x: cr.log(cr.clip(x, -1.0, 1.0) + 2) + cr.relu(x),
                        lambda x: torch.log(torch.clamp(x, -1.0, 1.0) + 2) + torch.relu(x),
                        distinct),
    "reshape, transpose, stack": (
        lambda x: cr.stack([x.reshape(4, 6).T, x.transpose(2, 0, 1).reshape(6, 4)], axis=1),
        lambda x: torch.stack([x.reshape(4, 6).T, x.permute(2, 0, 1).reshape(6, 4)], dim=1),
        distinct),
}


@CASES.case(name=list(EXPRESSIONS), seed=SEEDS)
def expression(name, seed):
    _, theirs, draw = EXPRESSIONS[name]
    return forward_backward(torch, theirs, [draw(np.random.default_rng(seed), (2, 3, 4))])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_expression(name, seed):
    ours, _, draw = EXPRESSIONS[name]
    check(expression, {"name": name, "seed": seed}, ours,
          [draw(np.random.default_rng(seed), (2, 3, 4))])


def broadcasting_inputs(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 2, (3, 4)) + 0.25 + rng.uniform(-0.1, 0.1, (3, 4))
    b = rng.integers(-2, 2, (4,)) + 0.75 + rng.uniform(-0.1, 0.1, 4)
    condition = rng.random((3, 1)) < 0.5
    return condition, [a, b]


@CASES.case(seed=SEEDS)
def maximum_minimum_where(seed):
    condition, arrays = broadcasting_inputs(seed)
    return forward_backward(torch, lambda a, b: torch.maximum(a, b) * torch.minimum(a, b)
                            + torch.where(torch.tensor(condition), a, b), arrays)


@pytest.mark.parametrize("seed", SEEDS)
def test_maximum_minimum_and_where_with_broadcasting(seed):
    condition, arrays = broadcasting_inputs(seed)
    check(maximum_minimum_where, {"seed": seed},
          lambda a, b: cr.maximum(a, b) * cr.minimum(a, b) + cr.where(condition, a, b), arrays)


def matmul_power_inputs(seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2)),
            rng.uniform(0.5, 2.0, (2,))]


def matmul_power_expression(a, b, p):  # the same operators in both libraries
    return (a @ b) ** 2 * p**1.5 + p ** (a @ b)


@CASES.case(seed=SEEDS)
def batched_matmul_and_power(seed):
    return forward_backward(torch, matmul_power_expression, matmul_power_inputs(seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_matmul_and_power(seed):
    check(batched_matmul_and_power, {"seed": seed}, matmul_power_expression,
          matmul_power_inputs(seed))


# Ties share the gradient; abs and relu have derivative 0 at 0; clamp passes at its bounds.
TIES = {"x": np.array([[3.0, -1.0, 3.0], [0.0, 1.0, 0.0]]),
        "y": np.array([[3.0, 2.0, -3.0], [0.0, 0.5, 1.0]])}
KINKS = {
    "maximum, minimum": (lambda x, y: cr.maximum(x, y) + cr.minimum(x, y) * 2,
                         lambda x, y: torch.maximum(x, y) + torch.minimum(x, y) * 2, ["x", "y"]),
    "max, min": (lambda x: x.max(axis=1) + x.min() + cr.max(x),
                 lambda x: x.amax(1) + x.amin() + x.amax(), ["x"]),
    "abs, relu, clip": (lambda x: abs(x) + cr.relu(x) + cr.clip(x, 0.0, 1.0),
                        lambda x: x.abs() + torch.relu(x) + torch.clamp(x, 0.0, 1.0), ["x"]),
}


@CASES.case(name=list(KINKS))
def ties_and_kinks(name):
    _, theirs, inputs = KINKS[name]
    return forward_backward(torch, theirs, [TIES[i] for i in inputs])


@pytest.mark.parametrize("name", list(KINKS))
def test_ties_and_kinks_follow_pytorch(name):
    ours, _, inputs = KINKS[name]
    check(ties_and_kinks, {"name": name}, ours, [TIES[i] for i in inputs])


def hvp_inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 3)), rng.standard_normal((3, 4))


@CASES.case(seed=SEEDS)
def hessian_vector_product(seed):
    x_values, w_values, v = hvp_inputs(seed)
    x, w = (torch.tensor(a, requires_grad=True) for a in (x_values, w_values))
    loss = (torch.log_softmax(torch.tanh(x @ w), 1) * x[:, :3]).sum() + x.var(correction=0)
    (gx,) = torch.autograd.grad(loss, x, create_graph=True)
    hx, hw = torch.autograd.grad((gx * torch.tensor(v)).sum(), [x, w])
    return {"grad_x": gx, "hvp_x": hx, "hvp_w": hw}


@pytest.mark.parametrize("seed", SEEDS)
def test_hessian_vector_products(seed):
    x_values, w_values, v = hvp_inputs(seed)
    x, w = (cr.tensor(a, requires_grad=True) for a in (x_values, w_values))
    loss = (cr.log_softmax(cr.tanh(x @ w), axis=1) * x[:, :3]).sum() + x.var()
    (gx,) = cr.autograd.grad(loss, x, create_graph=True)
    hx, hw = cr.autograd.grad((gx * v).sum(), [x, w])
    assert_matches(CASES.expected(hessian_vector_product, seed=seed),
                   {"grad_x": gx.data, "hvp_x": hx.data, "hvp_w": hw.data}, RTOL, ATOL)


MATMUL_SHAPES = [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 3)), ((2, 3, 4), (4,)),
                 ((4,), (2, 4, 3))]


def matmul_inputs(shapes):
    rng = np.random.default_rng(len(shapes[0]) * 10 + len(shapes[1]))
    return [rng.standard_normal(s) for s in shapes]


@CASES.case(shapes=MATMUL_SHAPES)
def matmul_with_vectors(shapes):
    return forward_backward(torch, lambda a, b: a @ b, matmul_inputs(shapes))


@pytest.mark.parametrize("shapes", MATMUL_SHAPES)
def test_matmul_with_vectors(shapes):
    check(matmul_with_vectors, {"shapes": shapes}, lambda a, b: a @ b, matmul_inputs(shapes))


# ----- Jacobians, Hessians, vjp and jvp, as torch.autograd.functional ---------------------
def functional_inputs():
    def draw(*shape, seed):
        return np.random.default_rng(seed).standard_normal(shape)
    return {"x": draw(2, 3, seed=10), "W": draw(3, 2, seed=11), "v": draw(2, 2, seed=12),
            "u_x": draw(2, 3, seed=13), "u_W": draw(3, 2, seed=14)}


def layer(lib, x, W):
    return lib.sigmoid(x @ W) * x.sum()


@CASES.case()
def autograd_functional():
    F = torch.autograd.functional
    a = {k: torch.tensor(v) for k, v in functional_inputs().items()}
    args = (a["x"], a["W"])
    jx, jW = F.jacobian(lambda x, W: layer(torch, x, W), args)
    hessian = F.hessian(lambda x, W: (layer(torch, x, W) ** 2).sum(), args)
    _, (vx, vW) = F.vjp(lambda x, W: layer(torch, x, W), args, a["v"])
    _, jvp = F.jvp(lambda x, W: layer(torch, x, W), args, (a["u_x"], a["u_W"]))
    return {"jacobian_x": jx, "jacobian_W": jW, "vjp_x": vx, "vjp_W": vW, "jvp": jvp,
            **{f"hessian_{i}{j}": hessian[i][j] for i in range(2) for j in range(2)}}


def test_autograd_functional_matches_torch():
    a = {k: cr.tensor(v) for k, v in functional_inputs().items()}
    args = (a["x"], a["W"])
    jx, jW = cr.autograd.jacobian(lambda x, W: layer(cr, x, W), args)
    hessian = cr.autograd.hessian(lambda x, W: (layer(cr, x, W) ** 2).sum(), args)
    _, (vx, vW) = cr.autograd.vjp(lambda x, W: layer(cr, x, W), args, a["v"])
    _, jvp = cr.autograd.jvp(lambda x, W: layer(cr, x, W), args, (a["u_x"], a["u_W"]))
    ours = {"jacobian_x": jx, "jacobian_W": jW, "vjp_x": vx, "vjp_W": vW, "jvp": jvp,
            **{f"hessian_{i}{j}": hessian[i][j] for i in range(2) for j in range(2)}}
    assert_matches(CASES.expected(autograd_functional), {k: t.data for k, t in ours.items()},
                   rtol=1e-10, atol=1e-12)
