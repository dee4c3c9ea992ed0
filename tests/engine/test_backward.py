"""Backpropagation as the lecture describes it, and the bookkeeping around it.

The worked examples of CS231n Lecture 4, the gate patterns (add distributes, multiply
swaps, max routes, a copy sums), accumulation into ``.grad``, retained and released
graphs, ``no_grad``, ``cr.autograd.grad``, memory, aliasing and dtypes.
"""

import gc
import math
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import Function
from chainrule.gradcheck import gradcheck, numerical_grad


def leaf(values, dtype=np.float64):
    return cr.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----- the lecture's worked examples ------------------------------------------------------
def test_lecture_example_add_then_multiply():
    x = cr.tensor(-2.0, requires_grad=True)
    y = cr.tensor(5.0, requires_grad=True)
    z = cr.tensor(-4.0, requires_grad=True)
    q = x + y
    f = q * z
    f.backward()
    assert f.item() == -12.0
    # df/dz = q = 3; df/dq = z = -4, and the add gate hands -4 to both x and y.
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)
    assert all(g.dtype == np.float32 and g.shape == () for g in (x.grad, y.grad, z.grad))


def sigmoid_neuron_expected(w0, x0, w1, x1, w2):
    """The gradients of sigma(w0 x0 + w1 x1 + w2), worked out by hand with the chain rule."""
    s = w0 * x0 + w1 * x1 + w2
    sig = 1 / (1 + math.exp(-s))
    local = sig * (1 - sig)  # d sigma / ds, the sigmoid gate's local gradient
    return {"x0": w0 * local, "w0": x0 * local, "x1": w1 * local, "w1": x1 * local,
            "w2": local}


@pytest.mark.parametrize("gates", ["sigmoid gate", "primitive gates"])
def test_sigmoid_neuron_example(gates):
    values = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    t = {name: leaf(v) for name, v in values.items()}
    s = t["w0"] * t["x0"] + t["w1"] * t["x1"] + t["w2"]
    f = cr.sigmoid(s) if gates == "sigmoid gate" else 1.0 / (1.0 + cr.exp(-s))
    f.backward()
    expected = sigmoid_neuron_expected(**values)
    for name in values:
        np.testing.assert_allclose(t[name].grad, expected[name], rtol=1e-12)
    # The numbers in the CS231n notes, rounded to two decimals.
    rounded = {"x0": 0.39, "w0": -0.20, "x1": -0.59, "w1": -0.39, "w2": 0.20}
    for name, value in rounded.items():
        assert abs(t[name].grad - value) < 0.01


# ----- the patterns of gradient flow --------------------------------------------------------
def test_add_gate_distributes_the_upstream_gradient_unchanged():
    rng = np.random.default_rng(0)
    x, y = leaf(rng.standard_normal(3)), leaf(rng.standard_normal(3))
    upstream = rng.standard_normal(3)
    (x + y).backward(upstream)
    np.testing.assert_array_equal(x.grad, upstream)
    np.testing.assert_array_equal(y.grad, upstream)


def test_multiply_gate_swaps_the_inputs():
    rng = np.random.default_rng(1)
    x, y = leaf(rng.standard_normal(3)), leaf(rng.standard_normal(3))
    upstream = rng.standard_normal(3)
    (x * y).backward(upstream)
    np.testing.assert_array_equal(x.grad, upstream * y.data)
    np.testing.assert_array_equal(y.grad, upstream * x.data)


def test_max_gate_routes_the_gradient_to_the_larger_input():
    x, y = leaf([1.0, 5.0, -2.0]), leaf([3.0, 2.0, -4.0])
    upstream = np.array([10.0, 20.0, 30.0])
    cr.maximum(x, y).backward(upstream)
    np.testing.assert_array_equal(x.grad, [0.0, 20.0, 30.0])
    np.testing.assert_array_equal(y.grad, [10.0, 0.0, 0.0])
    x.grad = y.grad = None
    cr.minimum(x, y).backward(upstream)
    np.testing.assert_array_equal(x.grad, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(y.grad, [0.0, 20.0, 30.0])


@pytest.mark.parametrize("op", [cr.maximum, cr.minimum])
def test_max_gate_splits_the_gradient_in_half_at_a_tie(op):
    x, y = leaf([2.0, 1.0]), leaf([2.0, 3.0])
    op(x, y).backward(np.array([4.0, 4.0]))
    assert x.grad[0] == y.grad[0] == 2.0
    assert x.grad[1] + y.grad[1] == 4.0


@pytest.mark.parametrize("op", [cr.max, cr.min])
def test_max_reduction_shares_the_gradient_among_tied_winners(op):
    x = leaf([3.0, -1.0, 3.0, -1.0])
    op(x).backward()
    winners = x.data == op(x).item()
    np.testing.assert_array_equal(x.grad, winners / winners.sum())


COPIES = {
    "x * x": (lambda x: x * x, lambda v: 2 * v),
    "x + x": (lambda x: x + x, lambda v: np.full_like(v, 2.0)),
    "x * x * x": (lambda x: x * x * x, lambda v: 3 * v * v),
    "exp(x) + tanh(x)": (lambda x: cr.exp(x) + cr.tanh(x),
                         lambda v: np.exp(v) + 1 - np.tanh(v) ** 2),
    "x * exp(x)": (lambda x: x * cr.exp(x), lambda v: (1 + v) * np.exp(v)),
    "sum(x) * sum(x)": (lambda x: x.sum() * x.sum(), lambda v: np.full_like(v, 2 * v.sum())),
    "s = sum(x); s * s": (lambda x: (lambda s: s * s)(x.sum()),
                          lambda v: np.full_like(v, 2 * v.sum())),
    "mean(x, 0) + sum(x, 0)": (lambda x: x.mean(axis=0) + x.sum(axis=0),
                               lambda v: np.full_like(v, 1 / v.shape[0] + 1)),
}
def copy_cases():
    return [
        pytest.param(name, shape, id=f"{name}-{shape}")
        for name in COPIES
        for shape in ([(3,), (2, 3)] if "0)" in name else [(), (3,), (2, 3)])
    ]


@pytest.mark.parametrize("name, shape", copy_cases())
def test_copy_gate_sums_the_gradients_of_every_use(name, shape):
    f, derivative = COPIES[name]
    values = np.random.default_rng(2).uniform(0.5, 1.5, shape)
    x = leaf(values)
    out = f(x)
    out.backward(np.ones(out.shape))
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == shape
    np.testing.assert_allclose(x.grad, derivative(values), rtol=1e-12)
    np.testing.assert_allclose(x.grad, numerical_grad(f, leaf(values)), rtol=1e-7)


FAN_OUT = {
    "sum": lambda x: x.sum(axis=0), "sum()": lambda x: x.sum(),
    "mean": lambda x: x.mean(axis=0), "mean()": lambda x: x.mean(),
    "max": lambda x: x.max(axis=1), "var": lambda x: x.var(axis=0),
    "logsumexp": lambda x: x.logsumexp(axis=1), "softmax": lambda x: x.softmax(0),
    "log_softmax": lambda x: x.log_softmax(), "exp": cr.exp, "tanh": cr.tanh,
    "reshape": lambda x: x.reshape(-1), "transpose": lambda x: x.T,
    "broadcast_to": lambda x: cr.broadcast_to(x, (2, 2, 3)), "getitem": lambda x: x[[0, 0, 1]],
    "slice": lambda x: x[:, ::-1], "mask": lambda x: x[x.data > 0],
    "concatenate": lambda x: cr.concatenate([x, x]), "stack": lambda x: cr.stack([x, x]),
    "astype": lambda x: x.astype(np.float64), "matmul": lambda x: x @ np.ones((3, 2)),
    "add": lambda x: x + 1.0, "negative": lambda x: -x, "multiply": lambda x: x * 2.0,
    "divide": lambda x: 1.0 / (x + 3.0), "where": lambda x: cr.where(x.data > 0, x, 0.0),
    "relu": cr.relu, "abs": abs, "clip": lambda x: x.clip(-0.5, 0.5),
    "maximum": lambda x: cr.maximum(x, 0.1),
}
def fan_out_cases():
    return [pytest.param(name, order, id=f"{name}-{order}")
            for name in FAN_OUT for order in ("first", "second", "twice")]


@pytest.mark.parametrize("name, order", fan_out_cases())
def test_a_tensor_feeding_every_operation_and_another_sums_both_gradients(name, order):
    op = FAN_OUT[name]
    other = {"first": cr.tanh, "second": cr.tanh, "twice": op}[order]
    first, second = (op, other) if order != "second" else (other, op)
    x = leaf(np.random.default_rng(5).standard_normal((2, 3)))
    assert gradcheck(lambda x: cr.concatenate([first(x).reshape(-1), second(x).reshape(-1)]),
                     [x])


def test_gradient_of_a_0d_leaf_is_an_ndarray():
    # .grad is documented as an ndarray (the package docstring shows array(-4., ...)).
    x = cr.tensor(-2.0, requires_grad=True)
    (x * 3.0).backward()
    assert isinstance(x.grad, np.ndarray)


# ----- accumulation, retained graphs, non-leaf tensors ---------------------------------------
def test_gradients_accumulate_across_backward_calls_until_reset():
    x = leaf([1.0, -2.0, 3.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * (2 * x.data))
    (x * 3.0).sum().backward()  # a separate graph adds too
    np.testing.assert_array_equal(x.grad, 4 * x.data + 3.0)
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])


def test_non_leaf_tensors_keep_no_gradient_unless_asked():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    kept = x * 3.0
    kept.retain_grad()
    ((h * h).sum() + (kept * kept).sum()).backward()
    assert x.is_leaf and not h.is_leaf
    assert h.grad is None
    np.testing.assert_array_equal(kept.grad, 2 * kept.data)
    np.testing.assert_array_equal(x.grad, 8 * x.data + 18 * x.data)


def test_a_second_backward_needs_retain_graph():
    x = leaf([1.0, 2.0])
    y = cr.tanh(x * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    with pytest.raises(cr.GraphError, match="retain_graph"):
        y.backward()


def test_a_released_shared_subgraph_cannot_be_reused():
    x = leaf([1.0, 2.0])
    shared = cr.exp(x)
    first, second = shared.sum(), (shared * 2.0).sum()
    first.backward()
    with pytest.raises(cr.GraphError, match="retain_graph"):
        second.backward()


def test_a_chain_of_100000_operations_backpropagates():
    x = leaf(0.5)
    y = x
    for i in range(100_000):
        y = y * 1.00001 if i % 2 else y + 0.5
    y.backward()
    np.testing.assert_allclose(x.grad, 1.00001**50_000, rtol=1e-9)


# ----- recording on and off ----------------------------------------------------------------
def assert_not_recorded(t):
    assert not t.requires_grad
    assert t._ctx is None and t.grad_fn is None


def test_no_grad_context_records_nothing_and_enable_grad_records_again():
    x = leaf([1.0, 2.0])
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        assert_not_recorded(cr.exp(x * 2.0).sum())
        with cr.enable_grad():
            y = x * 2.0
            assert y.requires_grad and y.grad_fn is not None
        assert_not_recorded(x + 1.0)
    assert cr.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_no_grad_as_a_decorator_and_after_an_exception():
    x = leaf([1.0, 2.0])

    @cr.no_grad()
    def evaluate(t):
        return (t * t).sum()

    assert_not_recorded(evaluate(x))
    assert cr.is_grad_enabled()
    with pytest.raises(RuntimeError, match="interrupted"):
        with cr.no_grad():
            raise RuntimeError("interrupted")
    assert cr.is_grad_enabled()


def test_backward_of_a_tensor_that_requires_no_grad_raises():
    with cr.no_grad():
        y = leaf([1.0]) * 2.0
    with pytest.raises(cr.GraphError):
        y.backward(np.ones(1))


# ----- cr.autograd.grad --------------------------------------------------------------------
def test_autograd_grad_returns_tensors_and_leaves_grad_untouched():
    x = leaf([1.0, 2.0, 3.0])
    (gx,) = cr.autograd.grad((x * x).sum(), x)
    assert isinstance(gx, cr.Tensor)
    np.testing.assert_array_equal(gx.data, 2 * x.data)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    assert x.grad is None


def test_autograd_grad_of_non_leaf_inputs_and_several_outputs():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    y1, y2 = (h * h).sum(), h.sum()
    gh, gx = cr.autograd.grad([y1, y2], [h, x])
    np.testing.assert_allclose(gh.data, 2 * h.data + 1)
    np.testing.assert_allclose(gx.data, 3 * (2 * h.data + 1))
    assert h.grad is None and x.grad is None


def test_autograd_grad_with_grad_outputs_and_allow_unused():
    x, unused = leaf([[1.0, 2.0], [3.0, 4.0]]), leaf([5.0])
    y = x * x
    upstream = np.array([[1.0, -1.0], [0.5, 2.0]])
    with pytest.raises(cr.GraphError):
        cr.autograd.grad(y, x)  # y has four values and no grad_outputs
    gx, gu = cr.autograd.grad(y, [x, unused], grad_outputs=upstream, retain_graph=True,
                              allow_unused=True)
    np.testing.assert_array_equal(gx.data, upstream * 2 * x.data)
    assert gu is None
    with pytest.raises(cr.GraphError, match="allow_unused"):
        cr.autograd.grad(y, [x, unused], grad_outputs=cr.tensor(upstream))


# ----- memory and aliasing -----------------------------------------------------------------
def test_saved_values_are_released_after_backward():
    x = leaf(np.ones(1000))
    h = cr.tanh(x)
    intermediate = weakref.ref(h.data)
    y = (h * h).sum()
    del h
    gc.collect()
    assert intermediate() is not None  # the graph keeps it for the backward pass
    y.backward()
    assert y._ctx.released
    assert intermediate() is None


def test_intermediate_values_go_while_backward_runs():
    """Once its gradient has been passed on, an intermediate tensor (and its values) is
    freed at once, not at the end of the pass: large graphs need that memory back."""
    seen_alive = []

    class Probe(Function):  # identity whose backward looks at a later tensor
        name = "probe_later_tensor"

        @staticmethod
        def forward(ctx, a):
            return a.copy()

        @staticmethod
        def backward(ctx, upstream):
            seen_alive.append(later() is not None)
            return upstream

    x = leaf(np.ones(1000))
    h = Probe.apply(x)
    middle = cr.tanh(h) * 2.0  # its gradient is a fresh array of this pass
    later = weakref.ref(middle)
    y = (middle * middle).sum()
    del h, middle
    y.backward()
    assert seen_alive == [False]


def test_retain_graph_keeps_the_saved_values():
    x = leaf(np.ones(10))
    h = cr.tanh(x)
    intermediate = weakref.ref(h.data)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    assert not y._ctx.released
    assert intermediate() is not None


VIEWS = {
    "a + b": (lambda a, b: a + b, (3,), (3,)),
    "broadcast a + b": (lambda a, b: a + b, (2, 3), (3,)),
    "reshape": (lambda a, b: a.reshape(3, 2) + b.reshape(3, 2), (2, 3), (6,)),
    "transpose": (lambda a, b: a.T + b, (2, 3), (3, 2)),
    "broadcast_to": (lambda a, b: cr.broadcast_to(a, (2, 3)) + b, (1, 3), (2, 3)),
    "concatenate": (lambda a, b: cr.concatenate([a, b]), (3,), (3,)),
    "stack": (lambda a, b: cr.stack([a, b]), (3,), (3,)),
    "getitem": (lambda a, b: a[0:2] + b[:], (2,), (2,)),
    "astype": (lambda a, b: a.astype(np.float64) + b, (3,), (3,)),
}


@pytest.mark.parametrize("name", VIEWS)
def test_leaf_gradients_never_alias_each_other_or_the_upstream(name):
    f, shape_a, shape_b = VIEWS[name]
    a, b = leaf(np.ones(shape_a)), leaf(np.ones(shape_b))
    out = f(a, b)
    upstream = np.random.default_rng(3).standard_normal(out.shape)
    given = upstream.copy()
    out.backward(upstream)
    before_b = b.grad.copy()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 100.0  # an optimizer updating one gradient in place
    np.testing.assert_array_equal(b.grad, before_b)
    np.testing.assert_array_equal(upstream, given)
    b.grad *= 3.0
    np.testing.assert_array_equal(upstream, given)
    out2 = f(a, b)
    out2.backward(upstream)  # accumulating must not write into the caller's array either
    np.testing.assert_array_equal(upstream, given)


def test_gradients_have_the_shape_of_the_data():
    rng = np.random.default_rng(4)
    a, b, c = leaf(rng.standard_normal((2, 1, 3))), leaf(rng.standard_normal((4, 1))), leaf(2.0)
    (a * b + c).sum().backward()
    assert a.grad.shape == (2, 1, 3) and b.grad.shape == (4, 1) and c.grad.shape == ()


FLOAT32_EXPRESSIONS = {
    "x * 2.0": lambda x: x * 2.0,
    "x * np.float64(2)": lambda x: x * np.float64(2),
    "2.0 - x": lambda x: 2.0 - x,
    "x / 3": lambda x: x / 3,
    "x ** 2": lambda x: x**2,
    "2 ** x": lambda x: 2**x,
    "exp, log": lambda x: cr.log(cr.exp(x) + 1),
    "tanh, sigmoid, relu": lambda x: cr.relu(cr.tanh(x) + cr.sigmoid(x)),
    "softmax": lambda x: cr.softmax(x, axis=1),
    "log_softmax": lambda x: cr.log_softmax(x),
    "mean": lambda x: x.mean(0),
    "var, std": lambda x: x.var(1, keepdims=True) + x.std(),
    "logsumexp, max": lambda x: x.logsumexp(axis=1) + x.max(),
    "matmul": lambda x: x @ cr.ones(4, 2),
    "matmul with a float32 array": lambda x: np.ones((2, 3), np.float32) @ x,
    "getitem, concatenate": lambda x: cr.concatenate([x[[0, 0]], x[1:]]),
    "where, maximum, clip": lambda x: cr.where(x.data > 0, x, cr.maximum(x, -0.5)).clip(-1, 1),
}


@pytest.mark.parametrize("name", FLOAT32_EXPRESSIONS)
def test_float32_stays_float32(name):
    x = cr.randn(3, 4, seed=5, requires_grad=True)
    out = FLOAT32_EXPRESSIONS[name](x)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_mixed_precision_follows_numpy_forward_and_keeps_each_leaf_dtype():
    x32 = cr.randn(3, seed=6, requires_grad=True)
    w64 = leaf(np.linspace(1.0, 2.0, 3))
    y = x32 * np.linspace(1.0, 2.0, 3)  # float32 Tensor * float64 array
    assert y.dtype == np.result_type(np.float32, np.float64)
    z = x32 * w64
    assert z.dtype == np.float64
    (y.sum() + z.sum()).backward()
    assert x32.grad.dtype == np.float32 and w64.grad.dtype == np.float64
    np.testing.assert_allclose(x32.grad, 2 * np.linspace(1.0, 2.0, 3), rtol=1e-6)
    np.testing.assert_allclose(w64.grad, x32.data.astype(np.float64), rtol=1e-15)


# ----- seeds of the backward pass -----------------------------------------------------------
def test_backward_with_an_upstream_gradient_for_a_non_scalar_output():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = x * 3.0
    upstream = np.arange(6.0).reshape(2, 3)
    y.backward(gradient=upstream, retain_graph=True)
    np.testing.assert_array_equal(x.grad, 3 * upstream)
    y.backward(gradient=cr.tensor(upstream))
    np.testing.assert_array_equal(x.grad, 6 * upstream)


def test_backward_of_a_non_scalar_output_needs_a_gradient():
    y = leaf(np.ones((2, 3))) * 3.0
    with pytest.raises(cr.GraphError, match=r"\(2, 3\)"):
        y.backward()
    with pytest.raises(cr.ShapeError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(gradient=np.ones((3, 2)))


# ----- gradients of gradients ----------------------------------------------------------------
def test_second_derivative_of_a_cube():
    x = leaf([-1.5, 0.5, 2.0])
    (dx,) = cr.autograd.grad((x**3).sum(), x, create_graph=True)
    np.testing.assert_allclose(dx.data, 3 * x.data**2)
    (d2x,) = cr.autograd.grad(dx.sum(), x)
    np.testing.assert_allclose(d2x.data, 6 * x.data)


def test_backward_with_create_graph_then_backward_again():
    x = leaf(2.0)
    (x**3).backward(create_graph=True)
    first = x.grad
    assert isinstance(first, cr.Tensor) and first.requires_grad
    np.testing.assert_allclose(first.data, 12.0)
    x.grad = None
    first.backward()
    np.testing.assert_allclose(x.grad, 12.0)  # d/dx 3x^2 = 6x


def test_third_derivative_through_repeated_create_graph():
    x = leaf([0.3, -0.7])
    y = cr.tanh(x).sum()
    (d1,) = cr.autograd.grad(y, x, create_graph=True)
    (d2,) = cr.autograd.grad(d1.sum(), x, create_graph=True)
    (d3,) = cr.autograd.grad(d2.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(d1.data, 1 - t**2)
    np.testing.assert_allclose(d2.data, -2 * t * (1 - t**2))
    np.testing.assert_allclose(d3.data, (1 - t**2) * (6 * t**2 - 2))


def test_a_deep_copy_of_a_graph_goes_back_beside_the_original():
    import copy

    x = cr.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    y = (x * 2.0).exp()
    y_copy = copy.deepcopy(y)  # its own graph, down to its own copy of x
    x_copy = y_copy._ctx.parents[0]._ctx.parents[0]
    (y * y_copy + 3.0 * y + y_copy).sum().backward()
    e = np.exp(2 * x.data)
    np.testing.assert_allclose(x.grad, 2 * e * e + 6 * e)
    np.testing.assert_allclose(x_copy.grad, 2 * e * e + 2 * e)


def test_a_graph_unpickled_from_another_process_goes_back_in_order():
    import pickle
    import subprocess
    import sys

    # a process that recorded more nodes than this one before saving its graph
    code = (
        "import pickle, sys\n"
        "import numpy as np\n"
        "import chainrule as cr\n"
        "w = cr.tensor(np.ones(2), requires_grad=True)\n"
        "for _ in range(20000):\n"
        "    w * 2.0\n"
        "x = cr.tensor(np.array([0.5, 1.0]), requires_grad=True)\n"
        "w.data += 1.0\n"
        "w.mark_changed()\n"
        "sys.stdout.buffer.write(pickle.dumps((x, x.exp(), w)))\n"
    )
    saved = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    x, y, w = pickle.loads(saved)  # made here, by this test
    loss = (y * 3.0 + y.exp() + y * w).sum()
    z = cr.tensor(np.ones(2), requires_grad=True)
    z.data *= 2.0
    z.mark_changed()  # a change in this process after the graph was loaded
    loss.backward()
    e = np.exp(x.data)
    np.testing.assert_allclose(x.grad, 3 * e + np.exp(e) * e + 2 * e)
    np.testing.assert_allclose(w.grad, e)
