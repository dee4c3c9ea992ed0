"""The same expressions through chainrule and PyTorch, in float64: values and gradients.

chainrule's ``var``/``std`` use NumPy's ``ddof=0``; PyTorch is asked for ``correction=0``.
"""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12
SEEDS = [0, 1, 2]


def run_both(cr_fn, torch_fn, arrays, upstream_seed=99):
    """Forward and backward (with the same random upstream) through both libraries."""
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = cr_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    upstream = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad.dtype == np.float64
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of input {i}")


def distinct(rng, shape):
    """Values at least 0.3 apart: no ties for max/min."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * 0.5 + rng.uniform(-0.1, 0.1, size)).reshape(shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_mlp_loss(seed):
    rng = np.random.default_rng(seed)
    n, d, h, c = 8, 5, 7, 4
    labels = rng.integers(0, c, n)
    arrays = [rng.standard_normal((n, d)), rng.standard_normal((d, h)) * 0.5,
              rng.standard_normal(h) * 0.1, rng.standard_normal((h, c)) * 0.5,
              rng.standard_normal(c) * 0.1]

    def ours(x, w1, b1, w2, b2):
        scores = cr.relu(x @ w1 + b1) @ w2 + b2
        return -cr.log_softmax(scores, axis=1)[np.arange(n), labels].mean()

    def theirs(x, w1, b1, w2, b2):
        scores = torch.relu(x @ w1 + b1) @ w2 + b2
        return -torch.log_softmax(scores, dim=1)[torch.arange(n), torch.tensor(labels)].mean()

    run_both(ours, theirs, arrays)


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




@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name", list(EXPRESSIONS))
def test_expression(name, seed):
    ours, theirs, draw = EXPRESSIONS[name]
    run_both(ours, theirs, [draw(np.random.default_rng(seed), (2, 3, 4))])


@pytest.mark.parametrize("seed", SEEDS)
def test_maximum_minimum_and_where_with_broadcasting(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 2, (3, 4)) + 0.25 + rng.uniform(-0.1, 0.1, (3, 4))
    b = rng.integers(-2, 2, (4,)) + 0.75 + rng.uniform(-0.1, 0.1, 4)
    condition = rng.random((3, 1)) < 0.5
    run_both(lambda a, b: cr.maximum(a, b) * cr.minimum(a, b) + cr.where(condition, a, b),
             lambda a, b: torch.maximum(a, b) * torch.minimum(a, b)
             + torch.where(torch.tensor(condition), a, b), [a, b])


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_matmul_and_power(seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2)),
              rng.uniform(0.5, 2.0, (2,))]
    run_both(lambda a, b, p: (a @ b) ** 2 * p**1.5 + p ** (a @ b),
             lambda a, b, p: (a @ b) ** 2 * p**1.5 + p ** (a @ b), arrays)


def test_ties_and_kinks_follow_pytorch():
    # Ties share the gradient; abs and relu have derivative 0 at 0; clamp passes at its bounds.
    x = np.array([[3.0, -1.0, 3.0], [0.0, 1.0, 0.0]])
    y = np.array([[3.0, 2.0, -3.0], [0.0, 0.5, 1.0]])
    run_both(lambda x, y: cr.maximum(x, y) + cr.minimum(x, y) * 2,
             lambda x, y: torch.maximum(x, y) + torch.minimum(x, y) * 2, [x, y])
    run_both(lambda x: x.max(axis=1) + x.min() + cr.max(x), lambda x: x.amax(1) + x.amin()
             + x.amax(), [x])
    run_both(lambda x: abs(x) + cr.relu(x) + cr.clip(x, 0.0, 1.0),
             lambda x: x.abs() + torch.relu(x) + torch.clamp(x, 0.0, 1.0), [x])


@pytest.mark.parametrize("seed", SEEDS)
def test_hessian_vector_products(seed):
    rng = np.random.default_rng(seed)
    x_values, w_values = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))
    v = rng.standard_normal((3, 4))

    def loss(lib, x, w):
        if lib is cr:
            return (cr.log_softmax(cr.tanh(x @ w), axis=1) * x[:, :3]).sum() + x.var()
        return (torch.log_softmax(torch.tanh(x @ w), 1) * x[:, :3]).sum() + x.var(correction=0)

    x, w = (cr.tensor(a, requires_grad=True) for a in (x_values, w_values))
    (gx,) = cr.autograd.grad(loss(cr, x, w), x, create_graph=True)
    hvp = cr.autograd.grad((gx * v).sum(), [x, w])
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x_values, w_values))
    (tgx,) = torch.autograd.grad(loss(torch, tx, tw), tx, create_graph=True)
    expected = torch.autograd.grad((tgx * torch.tensor(v)).sum(), [tx, tw])
    np.testing.assert_allclose(gx.data, tgx.detach().numpy(), rtol=RTOL, atol=ATOL)
    for ours, theirs in zip(hvp, expected):
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 3)),
                                    ((2, 3, 4), (4,)), ((4,), (2, 4, 3))])
def test_matmul_with_vectors(shapes):
    rng = np.random.default_rng(len(shapes[0]) * 10 + len(shapes[1]))
    run_both(lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal(s) for s in shapes])
