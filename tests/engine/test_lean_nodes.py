"""The eager engine's lean bookkeeping: bare nodes for operations that save nothing,
gradients summed in place only into arrays nobody else holds, and the in-place check
that looks further only when something was changed since a node was recorded."""

import contextlib
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine
from chainrule.engine import BareContext, Context, Function
from chainrule.errors import GraphError


def test_an_operation_whose_forward_saves_nothing_records_a_bare_node():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    node = (x * 2.0)._ctx
    assert isinstance(node, BareContext) and not isinstance(node, Context)
    assert not hasattr(node, "__dict__")
    assert isinstance(cr.relu(x)._ctx, Context)  # relu saves its mask


def test_a_node_stores_neither_its_operation_nor_an_output_its_rule_never_reads():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    product, exp = (x * 2.0)._ctx, cr.exp(x)._ctx
    # the operation is its node class's; only exp's rule reads the output
    assert product.fn is cr.ops.elementwise.Multiply and "fn" not in type(product).__slots__
    assert product.out is None and "out" not in type(product).__slots__
    assert "out" in type(exp).__slots__
    np.testing.assert_array_equal(exp.out, np.exp(x.data))
    assert type(product).__basicsize__ < type(exp).__basicsize__


def test_an_operation_that_saves_values_gets_a_context_with_room_for_them():
    class Scaled(Function):
        name = "test_lean_scaled"

        @staticmethod
        def forward(ctx, a, factor=1.0):
            ctx.factor = factor
            return a * factor

        @staticmethod
        def backward(ctx, upstream):
            return upstream * ctx.factor

    try:
        x = cr.tensor([1.0, 2.0], requires_grad=True)
        y = Scaled.apply(x, factor=3.0)
        assert isinstance(y._ctx, Context) and y._ctx.fn is Scaled
        y.sum().backward()
        np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    finally:
        del engine.OPERATIONS["test_lean_scaled"]


def test_a_gradient_passed_to_two_inputs_is_never_summed_into_in_place():
    # add passes its upstream array on to both inputs: the same array reaches x twice
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    seed = np.array([1.0, 1.0], dtype=np.float32)
    (x + x).backward(seed)
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    np.testing.assert_array_equal(seed, [1.0, 1.0])  # the caller's array is untouched


def test_gradients_summed_into_an_array_made_for_them_leave_others_alone():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    a = x * w
    y = a + a * x + (x - w)  # several paths into x and w, some through add's pass-through
    y.backward(np.ones(2, dtype=np.float32))
    xv, wv = x.data.astype(np.float64), w.data.astype(np.float64)
    np.testing.assert_allclose(x.grad, wv + 2 * xv * wv + 1)
    np.testing.assert_allclose(w.grad, xv + xv * xv - 1)


def test_leaf_gradients_are_arrays_of_their_own():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor([5.0, 6.0], requires_grad=True)
    (x + y).backward(np.ones(2, dtype=np.float32))
    assert x.grad is not y.grad  # add gave both the same upstream array
    x.grad += 1
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])


def test_changing_an_unrelated_tensor_does_not_refuse_backward():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    other = cr.tensor([0.0], requires_grad=True)
    y = (x * x).sum()
    other.mark_changed("an unrelated update")
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_changing_an_input_after_the_forward_is_refused_whatever_else_changed():
    x = cr.tensor([1.0, 2.0], requires_grad=True, name="x")
    before = cr.tensor([0.0], requires_grad=True)
    before.mark_changed("an earlier update")  # changed before the forward: fine
    y = (x * x * before.sum()).sum()
    x.mark_changed("my update")
    with pytest.raises(GraphError, match="'x' .*changed in place by my update"):
        y.backward()


def test_double_backward_through_bare_nodes():
    x = cr.tensor([0.5, -1.0], dtype=np.float64, requires_grad=True)
    y = cr.tanh(x).sum()
    (g,) = cr.autograd.grad(y, [x], create_graph=True)
    g.sum().backward()
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad, -2 * t * (1 - t * t))


def test_a_released_nodes_values_are_gone_before_the_next_rule_runs():
    seen_alive = []

    class Probe(Function):  # identity whose backward looks at its own output's values
        name = "test_lean_probe"

        @staticmethod
        def forward(ctx, a):
            return a.copy()

        @staticmethod
        def backward(ctx, upstream):
            seen_alive.append(values() is not None)
            return upstream

    try:
        x = cr.tensor(np.ones(1000), requires_grad=True)
        h = Probe.apply(x)
        values = weakref.ref(h.data)
        y = (h * 2.0).sum()  # the product's node saves h's values, released before Probe
        del h
        y.backward()
        assert seen_alive == [False]
    finally:
        del engine.OPERATIONS["test_lean_probe"]


# ----- the lean apply of operations of one or two arrays ----------------------------------
@contextlib.contextmanager
def operations_seen():
    """The names of the operations run inside the block, each run by ``operation_hook``
    through the general path (``engine.apply_unhooked``)."""
    seen = []

    def watch(cls, inputs, params):
        seen.append(cls.name)
        return engine.apply_unhooked(cls, inputs, params)

    engine.operation_hook = watch
    try:
        yield seen
    finally:
        engine.operation_hook = None


def _same_result(fn, *args):
    """``fn(*args)`` as users call it, and through the general path, agree in value,
    recorded inputs and gradients."""
    leaves = [cr.tensor(np.asarray(a, dtype=np.float32), requires_grad=True) for a in args]
    lean_out = fn(*leaves)
    lean_out.sum().backward()
    lean_grads = [t.grad.copy() for t in leaves]
    for t in leaves:
        t.grad = None
    with operations_seen() as seen:  # every operation through the general path
        general_out = fn(*leaves)
    general_out.sum().backward()
    np.testing.assert_array_equal(lean_out.data, general_out.data)
    assert lean_out._ctx.fn is general_out._ctx.fn
    assert lean_out._ctx.needs_input_grad == general_out._ctx.needs_input_grad
    for lean, t in zip(lean_grads, leaves):
        np.testing.assert_array_equal(lean, t.grad)
    return seen


@pytest.mark.parametrize("fn, args, names", [
    (lambda a, b: a + b, ([[1.0, 2.0], [3.0, 4.0]], [10.0, 20.0]), ["add"]),  # broadcast
    (lambda a, b: 2.0 * a - b, ([1.0, -2.0], [3.0, 4.0]), ["multiply", "subtract"]),
    (lambda a: cr.relu(a).sum(axis=0), ([[1.0, -2.0], [3.0, 4.0]],), ["relu", "sum"]),
    (lambda a: a.reshape(-1).mean(), ([[1.0, 2.0], [3.0, 4.0]],), ["reshape", "mean"]),
    (lambda x, w, b: cr.nn.functional.linear(x, w, b),  # a third array: the general way
     ([[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]], [0.5, -0.5]), ["linear"]),
])
def test_every_operation_gives_through_its_lean_apply_what_the_general_path_gives(fn, args,
                                                                                   names):
    assert _same_result(fn, *args) == names  # and the hook saw each operation once


def test_operators_methods_and_functions_all_reach_the_operation_hook():
    x = cr.tensor([1.0, -2.0], requires_grad=True)
    with operations_seen() as seen:
        y = cr.exp(-x * x + 1).sum(axis=0, keepdims=True)
    assert seen == ["negative", "multiply", "add", "exp", "sum"]
    y.backward()
    np.testing.assert_allclose(x.grad, -2 * x.data * np.exp(-x.data ** 2 + 1), rtol=1e-6)


def test_a_lean_apply_reads_the_arity_of_a_classmethod_forward_without_its_cls():
    class Halved(Function):
        name = "test_lean_halved"

        @classmethod
        def forward(cls, ctx, a):
            return a / 2

        @classmethod
        def backward(cls, ctx, upstream):
            return upstream / 2

    try:
        assert engine._lean_signature(Halved.forward) == (1, False)
        x = cr.tensor([4.0], requires_grad=True)
        Halved.apply(x).backward(np.ones(1, np.float32))
        assert x.grad.tolist() == [0.5]
    finally:
        engine.OPERATIONS.pop("test_lean_halved", None)


def test_an_operation_given_the_wrong_inputs_fails_as_its_forward_does():
    with pytest.raises(TypeError):
        cr.ops.elementwise.Add.apply(cr.tensor([1.0]))  # one array for a binary op
    with pytest.raises(cr.errors.ShapeError, match="add: shapes"):
        cr.tensor([1.0, 2.0]) + cr.tensor([1.0, 2.0, 3.0])


# ----- backward's order: by the clock at which each node saved its inputs ----------------
def test_a_tensor_used_by_several_nodes_gets_every_gradient_before_its_own_node_runs():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0  # used three times, by nodes made in an order unlike the graph's depth
    a = cr.exp(h * 0.1)
    b = h * h
    c = (a + b).sum() + h.sum() * 2.0
    c.backward()
    hd = 3.0 * x.data
    expected = 3.0 * (0.1 * np.exp(0.1 * hd) + 2 * hd + 2.0)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-6)


def test_a_backward_that_reaches_a_released_graph_changes_no_leaf_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    shared = x * w
    shared.sum().backward()  # releases the node of `shared`
    x.grad = w.grad = None
    with pytest.raises(GraphError, match="already used by an earlier backward"):
        (shared * 2.0 + w).sum().backward()
    assert x.grad is None and w.grad is None


# ----- a forward replaced after the class was made ------------------------------------
def test_a_forward_replaced_on_the_class_is_used_by_every_copy_of_its_apply():
    class Halved(Function):
        name = "test_replaced_forward"

        @staticmethod
        def forward(ctx, a):
            return a / 2

        @staticmethod
        def backward(ctx, upstream):
            return upstream * ctx.factor

    handed_out = Halved.apply  # as Tensor's operators hold theirs
    try:
        def tripled(ctx, a):  # saves a value on ctx, which the first forward did not
            ctx.factor = 3.0
            return a * 3

        Halved.forward = staticmethod(tripled)
        x = cr.tensor([2.0], requires_grad=True)
        for apply in (Halved.apply, handed_out):
            y = apply(x)
            assert y.tolist() == [6.0]
            y.backward(np.ones(1, np.float32))
        assert x.grad.tolist() == [6.0]

        def scaled(ctx, a, b):  # other arrays: the class's apply takes them
            return a * b

        Halved.forward = staticmethod(scaled)
        assert Halved.apply(x, 5.0).tolist() == [10.0]
    finally:
        engine.OPERATIONS.pop("test_replaced_forward", None)


def test_an_operation_given_more_arrays_than_its_forward_takes_is_refused():
    a = cr.tensor([1.0])
    with pytest.raises(TypeError, match="Add.apply"):
        cr.ops.elementwise.Add.apply(a, a, a)
    with pytest.raises(TypeError, match="Exp.apply"):
        cr.ops.elementwise.Exp.apply(a, axis=0)


def test_backward_and_autograd_grad_sum_the_gradients_of_a_tensor_in_the_same_order():
    # float32 addition is not associative: three gradients of very different sizes reach
    # h, so only the same order of summing gives the same bits
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal(64).astype(np.float32), requires_grad=True)

    def loss():
        h = x * 1.5
        small = (h * 1e-4).sum()
        big = cr.exp(h * 3.0).sum() * 1e4
        mid = (h * h).sum()
        return mid + (small + big) + cr.tanh(h).sum()

    (by_autograd,) = cr.autograd.grad(loss(), [x])
    loss().backward()
    np.testing.assert_array_equal(x.grad, by_autograd)
    order = engine.backward_order([loss()])
    ticks = [t._ctx.saved_at for t in order if t._ctx is not None]
    assert ticks == sorted(ticks, reverse=True)  # walked from the end: newest first


@pytest.mark.parametrize("make, dy_dh", [
    # both gradients of one rule reach h, each made for it: the second is summed in place
    (lambda h: h * h, lambda h: 2 * h),
    # add sends its upstream array itself to both inputs: never written into
    (lambda h: h + h, lambda h: 2.0 + 0 * h),
    # the same, then a third gradient, from the older node of the two
    (lambda h: (h + h) * h, lambda h: 4 * h),
])
def test_a_node_reached_twice_by_one_rule_gets_both_gradients(make, dy_dh):
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seed = np.array([1.0, 10.0, 100.0], dtype=np.float32)
    make(x * 3.0).backward(seed)
    np.testing.assert_allclose(x.grad, 3.0 * seed * dy_dh(3.0 * x.data), rtol=1e-6)
    np.testing.assert_array_equal(seed, [1.0, 10.0, 100.0])  # the caller's array is intact
