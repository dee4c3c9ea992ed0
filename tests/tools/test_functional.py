"""Jacobians, Hessians, vjp and jvp, with torch.autograd.functional's structure."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd.functional import hessian, jacobian, jacobian_size, jvp, vjp
from chainrule.gradcheck import numerical_grad


def t64(a, requires_grad=False):
    return cr.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def rand(*shape, seed=0):
    return t64(np.random.default_rng(seed).standard_normal(shape))


def layer(x, W):
    return cr.tanh(x @ W)


def test_jacobian_of_relu_is_diagonal_with_zeros_where_inputs_are_negative():
    data = np.array([-1.5, 2.0, -0.5, 3.0, 0.7])
    J = jacobian(cr.relu, t64(data))
    assert J.shape == (5, 5)
    np.testing.assert_array_equal(J.data, np.diag((data > 0).astype(float)))


def test_jacobian_of_matmul_matches_finite_differences_row_by_row():
    x, W = rand(2, 3, seed=1), rand(3, 4, seed=2)
    J = jacobian(lambda w: x @ w, W)
    assert J.shape == (2, 4, 3, 4)
    for i in np.ndindex(2, 4):
        onehot = np.zeros((2, 4))
        onehot[i] = 1
        row = numerical_grad(lambda w: x @ w, W, upstream=onehot)
        np.testing.assert_allclose(J.data[i], row, atol=1e-8)


def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose():
    A = np.random.default_rng(3).standard_normal((4, 4))
    H = hessian(lambda v: v @ (t64(A) @ v), rand(4, seed=4))
    np.testing.assert_allclose(H.data, A + A.T, atol=1e-12)


def test_vjp_and_jvp_agree_with_each_other_and_with_the_jacobian():
    x, W = rand(2, 3, seed=5), rand(3, 4, seed=6)
    v = rand(2, 4, seed=7)
    u = (rand(2, 3, seed=8), rand(3, 4, seed=9))
    out, (vx, vw) = vjp(layer, (x, W), v)
    out2, Ju = jvp(layer, (x, W), u)
    np.testing.assert_allclose(out.data, layer(x, W).data)
    np.testing.assert_allclose(out2.data, out.data)
    # v . (J u) == (v^T J) . u
    left = float((v.data * Ju.data).sum())
    right = float((vx.data * u[0].data).sum() + (vw.data * u[1].data).sum())
    assert left == pytest.approx(right, rel=1e-12)
    Jx, JW = jacobian(layer, (x, W))
    expected = (np.tensordot(Jx.data, u[0].data, axes=2)
                + np.tensordot(JW.data, u[1].data, axes=2))
    np.testing.assert_allclose(Ju.data, expected, atol=1e-12)


def test_result_structures_follow_pytorch():
    x, y = rand(3, seed=1), rand(2, seed=2)
    assert isinstance(jacobian(cr.exp, x), cr.Tensor)
    pair = jacobian(lambda a, b: a.sum() * b, (x, y))
    assert isinstance(pair, tuple) and [j.shape for j in pair] == [(2, 3), (2, 2)]
    outs = jacobian(lambda a: (a * 2, a.sum()), x)
    assert [j.shape for j in outs] == [(3, 3), (3,)]
    table = jacobian(lambda a, b: (a * 2, b.sum()), (x, y))
    assert [[j.shape for j in row] for row in table] == [[(3, 3), (3, 2)], [(3,), (2,)]]
    np.testing.assert_array_equal(table[0][1].data, 0)  # a * 2 does not depend on b
    H = hessian(lambda a, b: (a * a).sum() * b.sum(), (x, y))
    assert [[h.shape for h in row] for row in H] == [[(3, 3), (3, 2)], [(2, 3), (2, 2)]]
    out, g = vjp(lambda a: a.sum(), x)
    assert out.shape == () and g.shape == (3,)
    out, g = jvp(lambda a: (a * 2, a.sum()), t64(2.0))
    assert isinstance(out, tuple) and [float(t) for t in g] == [2.0, 1.0]


def test_inputs_keep_no_grad_and_results_have_no_graph_by_default():
    x = rand(3, seed=1)
    x.requires_grad_(True)
    J = jacobian(cr.sigmoid, x)
    out, g = vjp(cr.sigmoid, x, t64(np.ones(3)))
    assert x.grad is None
    assert not J.requires_grad and not out.requires_grad and not g.requires_grad


def test_create_graph_makes_results_differentiable():
    x = t64([1.0, -2.0, 3.0], requires_grad=True)
    J = jacobian(lambda a: a ** 3, x, create_graph=True)
    np.testing.assert_allclose(J.data, np.diag(3 * x.data ** 2))
    (g,) = cr.autograd.grad(J.sum(), x)
    np.testing.assert_allclose(g.data, 6 * x.data)


def test_vectors_are_checked():
    x = rand(3, seed=1)
    with pytest.raises(cr.ChainruleError, match="single element"):
        vjp(cr.exp, x)
    with pytest.raises(cr.ShapeError, match="shape"):
        vjp(cr.exp, x, t64(np.ones(4)))
    with pytest.raises(cr.ChainruleError, match="single element"):
        jvp(cr.exp, x)
    with pytest.raises(cr.ChainruleError, match="single element"):
        hessian(cr.exp, x)
    with pytest.raises(cr.ChainruleError, match="Tensor or a tuple"):
        jacobian(cr.exp, [1.0, 2.0])


def test_jacobian_size_of_the_lectures_layer():
    size = jacobian_size((100, 4096), (100, 4096))
    n = 100 * 4096
    assert size.shape == (n, n) == (409_600, 409_600)
    assert size.entries == n * n and size.nbytes == 4 * n * n
    text = str(size)
    assert "409,600 x 409,600" in text
    assert f"{n * n / 1e9:.1f} billion entries" in text
    assert f"{4 * n * n / 1e9:.1f} GB in float32" in text
    assert "never builds it" in text and f"O({n:,})" in text
    assert jacobian_size(4096, 4096, dtype="float64").nbytes == 8 * 4096 ** 2
    assert jacobian_size((3,), (2,)).as_dict()["memory"] == "24 B"
    with pytest.raises(cr.ChainruleError):
        jacobian_size((-1, 3), (3,))
    with pytest.raises(cr.ChainruleError):
        jacobian_size("big", (3,))


def test_jacobian_size_agrees_with_a_real_jacobian():
    x = rand(2, 3, seed=1)
    J = jacobian(cr.tanh, x)
    size = jacobian_size(x.shape, x.shape, dtype="float64")
    assert J.size == size.entries and J.data.nbytes == size.nbytes


# ----- Hessian-vector products -------------------------------------------------------------
def _cubic(x, w):
    return (cr.tanh(x @ w) ** 2).sum() + (x**3).sum()


def test_hvp_and_vhp_equal_the_hessian_times_v():
    rng = np.random.default_rng(5)
    x = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    v = (rng.standard_normal((2, 3)), rng.standard_normal((3, 2)))
    H = hessian(_cubic, (x, w))
    flat = np.concatenate([a.ravel() for a in v])
    blocks = [[H[i][j].data.reshape(np.size(v[i]), np.size(v[j])) for j in range(2)]
              for i in range(2)]
    full = np.block(blocks)
    value_h, hv = cr.autograd.hvp(_cubic, (x, w), v)
    value_v, vh = cr.autograd.vhp(_cubic, (x, w), v)
    np.testing.assert_allclose(value_h.data, _cubic(x, w).data)
    np.testing.assert_allclose(value_v.data, _cubic(x, w).data)
    np.testing.assert_allclose(np.concatenate([g.data.ravel() for g in hv]), full @ flat,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([g.data.ravel() for g in vh]), flat @ full,
                               rtol=1e-10, atol=1e-12)
    assert not hv[0].requires_grad and hv[1].shape == (3, 2)


def test_hvp_of_one_input_returns_a_tensor_and_matches_torch_when_present():
    x = cr.tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True)
    v = np.array([1.0, 0.5, -2.0])

    def f(x):
        return cr.tanh(x).sum() * (x * x).sum()

    _, hv = cr.autograd.hvp(f, x, v)
    _, vh = cr.autograd.vhp(f, x, v)
    expected = hessian(f, x).data @ v
    np.testing.assert_allclose(hv.data, expected, rtol=1e-10)
    np.testing.assert_allclose(vh.data, expected, rtol=1e-10)
    torch = pytest.importorskip("torch")
    _, t_hv = torch.autograd.functional.hvp(
        lambda t: torch.tanh(t).sum() * (t * t).sum(), torch.tensor(x.data), torch.tensor(v))
    np.testing.assert_allclose(hv.data, t_hv.numpy(), rtol=1e-10)


def test_hvp_needs_a_scalar_function():
    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(cr.ChainruleError, match="hvp: func must return a Tensor with a single"):
        cr.autograd.hvp(lambda x: x * 2, x, np.ones(3))
