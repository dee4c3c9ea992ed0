"""Every differentiable operation against centered differences, on random shapes.

Hypothesis draws the shapes (broadcasting included) and a seed for the values; the
values are drawn away from the points where an operation has no derivative (0 for
division, abs and relu, ties for max/min, the bounds of clip). Each check runs in
float64 with ``chainrule.gradcheck.gradcheck``, which compares backpropagation through
the operation, for a random upstream gradient, with numerical gradients.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.gradcheck import gradcheck, gradgradcheck

# CHAINRULE_EXAMPLES=400 explores ten times more (about a minute) for a deeper check.
EXAMPLES_PER_TEST = int(os.environ.get("CHAINRULE_EXAMPLES", "40"))
EXAMPLES = settings(max_examples=EXAMPLES_PER_TEST, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
two_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)
# Which side is a Tensor; the other may be a NumPy array or a Python number (2.0 - x).
operand_kinds = st.sampled_from(
    [("tensor", "tensor"), ("tensor", "array"), ("array", "tensor"),
     ("tensor", "scalar"), ("scalar", "tensor")]
)


# ----- values away from the points where an operation has no derivative ------------------
def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)


def distinct(rng, shape):
    """Values at least 0.3 apart, so a max or min has a single winner."""
    size = int(np.prod(shape))
    spread = (rng.permutation(size) - size / 2) * 0.5 + rng.uniform(-0.1, 0.1, size)
    return spread.reshape(shape)


def near_quarter(rng, shape):
    return rng.integers(-2, 2, shape) + 0.25 + rng.uniform(-0.1, 0.1, shape)


def near_three_quarters(rng, shape):
    """With ``near_quarter`` for the other operand, no pair is closer than 0.3: no ties."""
    return rng.integers(-2, 2, shape) + 0.75 + rng.uniform(-0.1, 0.1, shape)


def leaf(values):
    return cr.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def operand(kind, values):
    if kind == "tensor":
        return leaf(values)
    if kind == "array":
        return np.asarray(values, dtype=np.float64)
    return float(values)


def check(f, *inputs, reference=None, **kwargs):
    """gradcheck ``f`` at ``inputs``, and its forward value against NumPy's ``reference``."""
    if reference is not None:
        raw = [x.data if isinstance(x, cr.Tensor) else x for x in inputs]
        expected = reference(*raw)
        out = f(*inputs)
        assert out.shape == np.shape(expected)
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    kwargs = {"atol": 1e-7, "rtol": 1e-6, **kwargs}  # float64 differences are this good
    assert gradcheck(f, list(inputs), **kwargs)


# ----- elementwise binary operations, with broadcasting -----------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add, normal, normal),
    "add()": (cr.add, np.add, normal, normal),
    "subtract": (lambda a, b: a - b, np.subtract, normal, normal),
    "subtract()": (cr.subtract, np.subtract, normal, normal),
    "multiply": (lambda a, b: a * b, np.multiply, normal, normal),
    "multiply()": (cr.multiply, np.multiply, normal, normal),
    "divide": (lambda a, b: a / b, np.divide, normal, away_from_zero),
    "divide()": (cr.divide, np.divide, normal, away_from_zero),
    "power (tensor exponent)": (lambda a, b: a**b, np.power, positive, normal),
    "power()": (cr.power, np.power, positive, normal),
    "maximum": (cr.maximum, np.maximum, near_quarter, near_three_quarters),
    "minimum": (cr.minimum, np.minimum, near_quarter, near_three_quarters),
}


@pytest.mark.parametrize("name", BINARY)
@EXAMPLES
@given(shapes=two_shapes, kinds=operand_kinds, seed=seeds)
def test_binary_operation(name, shapes, kinds, seed):
    fn, reference, draw_a, draw_b = BINARY[name]
    rng = np.random.default_rng(seed)
    shape_a, shape_b = shapes.input_shapes
    shape_a = () if kinds[0] == "scalar" else shape_a
    shape_b = () if kinds[1] == "scalar" else shape_b
    a = operand(kinds[0], draw_a(rng, shape_a))
    b = operand(kinds[1], draw_b(rng, shape_b))
    check(fn, a, b, reference=reference)


@EXAMPLES
@given(shape=shapes, exponent=st.sampled_from([2, 3, -1, 0.5, -1.5, 2.5, 1.0]), seed=seeds)
def test_power_with_scalar_exponent(shape, exponent, seed):
    x = leaf(positive(np.random.default_rng(seed), shape))
    check(lambda x: x**exponent, x, reference=lambda x: x**exponent)


@EXAMPLES
@given(shape=shapes, exponent=st.sampled_from([2, 3, 2.0, -2]), seed=seeds)
def test_power_of_negative_base_with_integer_exponent(shape, exponent, seed):
    x = leaf(away_from_zero(np.random.default_rng(seed), shape))
    check(lambda x: cr.power(x, exponent), x, reference=lambda x: x**exponent)


@EXAMPLES
@given(shape=shapes, base=st.sampled_from([2.0, 0.5, np.e]), seed=seeds)
def test_power_with_scalar_base(shape, base, seed):
    x = leaf(normal(np.random.default_rng(seed), shape))
    check(lambda x: base**x, x, reference=lambda x: base**x)


# ----- elementwise unary operations ------------------------------------------------------
UNARY = {
    "negative": (cr.negative, np.negative, normal),
    "-x": (lambda x: -x, np.negative, normal),
    "exp": (cr.exp, np.exp, normal),
    "log": (cr.log, np.log, positive),
    "sqrt": (cr.sqrt, np.sqrt, positive),
    "abs": (cr.abs, np.abs, away_from_zero),
    "abs(x)": (lambda x: abs(x), np.abs, away_from_zero),
    "tanh": (cr.tanh, np.tanh, normal),
    "sigmoid": (cr.sigmoid, lambda x: 1 / (1 + np.exp(-x)), lambda rng, s: 4 * normal(rng, s)),
    "relu": (cr.relu, lambda x: np.maximum(x, 0), away_from_zero),
    "clip": (lambda x: cr.clip(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0), near_quarter),
    "clip(min only)": (lambda x: x.clip(min=0.0), lambda x: np.clip(x, 0.0, None), near_quarter),
    "clip(max only)": (lambda x: x.clip(max=0.0), lambda x: np.clip(x, None, 0.0), near_quarter),
    "method exp": (lambda x: x.exp(), np.exp, normal),
    "method log": (lambda x: x.log(), np.log, positive),
    "method sqrt": (lambda x: x.sqrt(), np.sqrt, positive),
    "method tanh": (lambda x: x.tanh(), np.tanh, normal),
    "method sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), normal),
    "method relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), away_from_zero),
}


@pytest.mark.parametrize("name", UNARY)
@EXAMPLES
@given(shape=shapes, seed=seeds)
def test_unary_operation(name, shape, seed):
    fn, reference, draw = UNARY[name]
    check(fn, leaf(draw(np.random.default_rng(seed), shape)), reference=reference)


@EXAMPLES
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4),
       kinds=operand_kinds, condition_is_tensor=st.booleans(), seed=seeds)
def test_where(shapes, kinds, condition_is_tensor, seed):
    rng = np.random.default_rng(seed)
    shape_c, shape_a, shape_b = shapes.input_shapes
    condition = rng.random(shape_c) < 0.5
    if condition_is_tensor:
        condition = cr.tensor(condition)
    a = operand(kinds[0], normal(rng, () if kinds[0] == "scalar" else shape_a))
    b = operand(kinds[1], normal(rng, () if kinds[1] == "scalar" else shape_b))
    raw_condition = np.asarray(condition)
    check(lambda a, b: cr.where(condition, a, b), a, b,
          reference=lambda a, b: np.where(raw_condition, a, b))


def test_astype_float32_leaf_through_float64():
    # numerical_grad evaluates a float32 leaf in float64, so the cast is exact there.
    x = cr.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    assert gradcheck(lambda x: cr.tanh(x.astype(np.float64)) * 3, [x], atol=1e-4, rtol=1e-3)


@EXAMPLES
@given(shape=shapes, seed=seeds, dtype=st.sampled_from([np.float32, np.float64, "float64"]))
def test_astype(shape, seed, dtype):
    # Through float32 the function must be linear for differences with a large step to be exact.
    x = leaf(normal(np.random.default_rng(seed), shape))
    assert x.astype(dtype).dtype == np.dtype(dtype)
    check(lambda x: x.astype(dtype) * 3.0, x, h=1e-2, atol=1e-3, rtol=1e-3)
    check(lambda x: x.float() * 3.0, x, h=1e-2, atol=1e-3, rtol=1e-3)
    check(lambda x: cr.tanh(x.double()), x)


# ----- matrix multiplication --------------------------------------------------------------
MATMUL_CASES = [
    ((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)),
    ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((1, 3, 4), (2, 4, 2)), ((3, 4), (2, 4, 2)),
]


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_CASES)
def test_matmul_cases(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = leaf(normal(rng, shape_a)), leaf(normal(rng, shape_b))
    check(cr.matmul, a, b, reference=np.matmul)
    check(lambda a, b: a @ b, a, b)


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batches = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    batch_a, batch_b = batches.input_shapes
    a = draw(st.sampled_from([(k,), (n, k), batch_a + (n, k)]))
    b = draw(st.sampled_from([(k,), (k, m), batch_b + (k, m)]))
    return a, b


@EXAMPLES
@given(shapes=matmul_shapes(), which=st.sampled_from(["both", "left", "right"]), seed=seeds)
def test_matmul(shapes, which, seed):
    rng = np.random.default_rng(seed)
    a, b = normal(rng, shapes[0]), normal(rng, shapes[1])
    a = a if which == "right" else leaf(a)  # ndarray @ Tensor goes through __rmatmul__
    b = b if which == "left" else leaf(b)
    check(lambda a, b: a @ b, a, b, reference=np.matmul)


# ----- reductions ---------------------------------------------------------------------------
@st.composite
def shape_and_axis(draw, min_dims=0):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    options = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    return shape, draw(st.one_of(options)), draw(st.booleans())


def reduced_count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


REDUCTIONS = {
    "sum": (cr.sum, np.sum, normal),
    "mean": (cr.mean, np.mean, normal),
    "max": (cr.max, np.max, distinct),
    "min": (cr.min, np.min, distinct),
    "var": (cr.var, np.var, normal),
    "logsumexp": (cr.logsumexp, None, normal),
    "method sum": (lambda x, axis, keepdims: x.sum(axis, keepdims), np.sum, normal),
    "method mean": (lambda x, axis, keepdims: x.mean(axis, keepdims), np.mean, normal),
    "method max": (lambda x, axis, keepdims: x.max(axis, keepdims), np.max, distinct),
    "method min": (lambda x, axis, keepdims: x.min(axis, keepdims), np.min, distinct),
    "method var": (lambda x, axis, keepdims: x.var(axis, keepdims=keepdims), np.var, normal),
    "method logsumexp": (lambda x, axis, keepdims: x.logsumexp(axis, keepdims), None, normal),
}


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize("name", REDUCTIONS)
@EXAMPLES
@given(case=shape_and_axis(), seed=seeds)
def test_reduction(name, case, seed):
    fn, reference, draw = REDUCTIONS[name]
    shape, axis, keepdims = case
    reference = reference or np_logsumexp
    x = leaf(draw(np.random.default_rng(seed), shape))
    check(lambda x: fn(x, axis=axis, keepdims=keepdims), x,
          reference=lambda x: reference(x, axis=axis, keepdims=keepdims))


@EXAMPLES
@given(case=shape_and_axis(), ddof=st.sampled_from([0, 1]), seed=seeds)
def test_var_and_std_with_ddof(case, ddof, seed):
    shape, axis, keepdims = case
    if reduced_count(shape, axis) - ddof < 1:
        ddof = 0
    x = leaf(distinct(np.random.default_rng(seed), shape))
    check(lambda x: cr.var(x, axis=axis, ddof=ddof, keepdims=keepdims), x,
          reference=lambda x: np.var(x, axis=axis, ddof=ddof, keepdims=keepdims))
    if reduced_count(shape, axis) >= 2:  # a spread of one value has no derivative (sqrt(0))
        check(lambda x: x.std(axis=axis, ddof=ddof, keepdims=keepdims), x,
              reference=lambda x: np.std(x, axis=axis, ddof=ddof, keepdims=keepdims))
        check(lambda x: cr.std(x, axis, ddof, keepdims), x)


@st.composite
def shape_and_one_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@EXAMPLES
@given(case=shape_and_one_axis(), scale=st.sampled_from([1.0, 5.0]), seed=seeds)
def test_softmax_and_log_softmax(case, scale, seed):
    shape, axis = case
    x = leaf(scale * normal(np.random.default_rng(seed), shape))
    check(lambda x: cr.softmax(x, axis=axis), x, reference=lambda x: np_softmax(x, axis))
    check(lambda x: x.softmax(axis), x)
    check(lambda x: cr.log_softmax(x, axis=axis), x,
          reference=lambda x: np.log(np_softmax(x, axis)))
    check(lambda x: x.log_softmax(axis), x)


def test_softmax_default_axis_is_last():
    x = leaf(normal(np.random.default_rng(1), (3, 4)))
    np.testing.assert_allclose(cr.softmax(x).data, np_softmax(x.data, -1))
    np.testing.assert_allclose(cr.log_softmax(x).data, np.log(np_softmax(x.data, -1)))
    check(cr.softmax, x)
    check(cr.log_softmax, x)


# ----- operations that move values: reshape, transpose, broadcast, index, join ----------
@st.composite
def shape_and_new_shape(draw):
    """A shape and another with as many elements, made by regrouping its prime factors."""
    shape = draw(shapes)
    factors = draw(st.permutations([f for n in shape for f in {1: [], 2: [2], 3: [3],
                                                                 4: [2, 2]}[n]]))
    target = []
    for f in factors:
        if target and draw(st.booleans()):
            target[-1] *= f
        else:
            target.append(f)
    for _ in range(draw(st.integers(0, 2))):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@EXAMPLES
@given(case=shape_and_new_shape(), seed=seeds)
def test_reshape(case, seed):
    shape, target = case
    x = leaf(normal(np.random.default_rng(seed), shape))
    check(lambda x: cr.reshape(x, target), x, reference=lambda x: np.reshape(x, target))
    check(lambda x: x.reshape(*target), x)
    check(lambda x: x.flatten(), x, reference=lambda x: x.reshape(-1))


@st.composite
def shape_and_permutation(draw):
    shape = draw(shapes)
    axes = draw(st.permutations(range(len(shape))))
    return shape, tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)


@EXAMPLES
@given(case=shape_and_permutation(), seed=seeds)
def test_transpose_permute_swapaxes(case, seed):
    shape, axes = case
    x = leaf(normal(np.random.default_rng(seed), shape))
    check(lambda x: cr.transpose(x), x, reference=np.transpose)
    check(lambda x: x.T, x, reference=lambda x: x.T)
    check(lambda x: x.transpose(), x)
    check(lambda x: cr.transpose(x, axes), x, reference=lambda x: np.transpose(x, axes))
    check(lambda x: x.transpose(axes), x)
    check(lambda x: x.permute(axes), x, reference=lambda x: np.transpose(x, axes))
    check(lambda x: cr.permute(x, axes), x)
    if len(axes) != 1:  # a single int: see test_permute_of_one_axis_given_as_int
        check(lambda x: x.permute(*axes), x, reference=lambda x: np.transpose(x, axes))
        check(lambda x: cr.permute(x, *axes), x)
    if len(shape) >= 2:
        first, second = axes[0], axes[-1]
        check(lambda x: x.swapaxes(first, second), x,
              reference=lambda x: np.swapaxes(x, first, second))
        check(lambda x: cr.swapaxes(x, first, second), x)


ONE_AXIS_AS_INT = {
    "x.permute(0)": lambda x: x.permute(0),
    "x.transpose(0)": lambda x: x.transpose(0),
    "cr.permute(x, 0)": lambda x: cr.permute(x, 0),
}


@pytest.mark.parametrize("call", ONE_AXIS_AS_INT)
def test_permute_of_one_axis_given_as_int(call):
    # NumPy's a.transpose(0) and PyTorch's x.permute(0) accept this on a 1-D array.
    check(ONE_AXIS_AS_INT[call], leaf(np.arange(3.0)), reference=lambda x: x)


@st.composite
def shape_and_broadcast_target(draw):
    shape = draw(shapes)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    grown = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    sizes = lead + tuple(-1 if n != 1 and draw(st.booleans()) else t
                         for n, t in zip(shape, grown))  # expand's -1 keeps a size
    return shape, lead + grown, sizes


@EXAMPLES
@given(case=shape_and_broadcast_target(), seed=seeds)
def test_broadcast_to_and_expand(case, seed):
    shape, target, sizes = case
    x = leaf(normal(np.random.default_rng(seed), shape))
    check(lambda x: cr.broadcast_to(x, target), x,
          reference=lambda x: np.broadcast_to(x, target))
    check(lambda x: x.broadcast_to(target), x)
    check(lambda x: x.expand(*sizes), x, reference=lambda x: np.broadcast_to(x, target))
    check(lambda x: cr.expand(x, sizes), x)


index_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@st.composite
def basic_index_case(draw):
    shape = draw(index_shapes)  # slices with any step (negative too), ints, None, Ellipsis
    return shape, draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))


@EXAMPLES
@given(case=basic_index_case(), seed=seeds)
def test_basic_indexing(case, seed):
    shape, index = case
    x = leaf(normal(np.random.default_rng(seed), shape))
    check(lambda x: x[index], x, reference=lambda x: x[index])


@st.composite
def integer_array_index_case(draw):
    shape = draw(index_shapes)
    result = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=5)
    return shape, draw(hnp.integer_array_indices(shape, result_shape=result))


@EXAMPLES
@given(case=integer_array_index_case(), seed=seeds)
def test_integer_array_indexing(case, seed):
    # Small shapes and up to 5 picks per axis make repeated indices frequent: an element
    # picked twice receives both gradients.
    shape, index = case
    x = leaf(normal(np.random.default_rng(seed), shape))
    check(lambda x: x[index], x, reference=lambda x: x[index])
    first = index[0]
    check(lambda x: x[first], x, reference=lambda x: x[first])
    check(lambda x: x[cr.tensor(first)], x)
    check(lambda x: x[first.tolist()], x, reference=lambda x: x[first])
    if len(shape) >= 2:
        check(lambda x: x[first, ::-1], x, reference=lambda x: x[first, ::-1])
        last = index[-1]
        check(lambda x: x[None, ..., last], x, reference=lambda x: x[None, ..., last])


def test_indexing_with_repeated_indices_sums_their_gradients():
    x = leaf(np.arange(4.0))
    y = x[[0, 0, 0, 3, -1]]
    y.backward(np.ones(5))
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 0.0, 2.0])


@EXAMPLES
@given(shape=index_shapes, seed=seeds)
def test_boolean_mask_indexing(shape, seed):
    rng = np.random.default_rng(seed)
    x = leaf(normal(rng, shape))
    mask = rng.random(shape) < 0.5
    rows = rng.random(shape[0]) < 0.5
    check(lambda x: x[mask], x, reference=lambda x: x[mask])
    check(lambda x: x[cr.tensor(mask)], x)
    check(lambda x: x[x.data > 0], x, reference=lambda x: x[x > 0])
    check(lambda x: x[rows], x, reference=lambda x: x[rows])
    check(lambda x: x[rows, ...], x, reference=lambda x: x[rows, ...])


@st.composite
def concatenate_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    count = draw(st.integers(1, 4))
    shapes_ = [shape[:axis % len(shape)] + (draw(st.integers(1, 3)),)
               + shape[axis % len(shape) + 1:] for _ in range(count)]
    kinds = draw(st.lists(st.sampled_from(["tensor", "array"]), min_size=count,
                          max_size=count).filter(lambda k: "tensor" in k))
    return shapes_, axis, kinds


@EXAMPLES
@given(case=concatenate_case(), seed=seeds)
def test_concatenate(case, seed):
    shapes_, axis, kinds = case
    rng = np.random.default_rng(seed)
    parts = [operand(kind, normal(rng, s)) for kind, s in zip(kinds, shapes_)]
    check(lambda *parts: cr.concatenate(parts, axis=axis), *parts,
          reference=lambda *parts: np.concatenate(parts, axis=axis))


@st.composite
def stack_case(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    count = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.sampled_from(["tensor", "array"]), min_size=count,
                          max_size=count).filter(lambda k: "tensor" in k))
    return shape, draw(st.integers(-len(shape) - 1, len(shape))), kinds


@EXAMPLES
@given(case=stack_case(), seed=seeds)
def test_stack(case, seed):
    shape, axis, kinds = case
    rng = np.random.default_rng(seed)
    parts = [operand(kind, normal(rng, shape)) for kind in kinds]
    check(lambda *parts: cr.stack(parts, axis=axis), *parts,
          reference=lambda *parts: np.stack(parts, axis=axis))


# ----- second order: differentiate the backward pass itself -----------------------------
def check_second_order(f, *inputs):
    """Second derivatives through ``f`` against centered differences (see gradgradcheck)."""
    assert gradgradcheck(f, list(inputs))


def mask_of(rng, shape):
    return rng.random(shape) < 0.5


# Each function is nonlinear around the operation under test (squares), so that the
# upstream gradient reaching it depends on the inputs and its second derivative is not 0.
SECOND_ORDER = {
    "multiply": (lambda a, b: a * b, (normal, normal)),
    "divide": (lambda a, b: a / b, (normal, away_from_zero)),
    "power (scalar exponent)": (lambda a: a**3, (positive,)),
    "power (tensor exponent)": (lambda a, b: a**b, (positive, normal)),
    "add": (lambda a, b: (a + b) ** 2, (normal, normal)),
    "subtract": (lambda a, b: (a - b) ** 2, (normal, normal)),
    "negative": (lambda a: (-a) ** 3, (normal,)),
    "exp": (cr.exp, (normal,)),
    "log": (cr.log, (positive,)),
    "sqrt": (cr.sqrt, (positive,)),
    "abs": (lambda a: abs(a) ** 2, (away_from_zero,)),
    "tanh": (cr.tanh, (normal,)),
    "sigmoid": (cr.sigmoid, (normal,)),
    "relu": (lambda a: cr.relu(a) ** 2, (away_from_zero,)),
    "clip": (lambda a: cr.clip(a, -0.5, 1.0) ** 2, (near_quarter,)),
    "maximum": (lambda a, b: cr.maximum(a, b) ** 2, (near_quarter, near_three_quarters)),
    "minimum": (lambda a, b: cr.minimum(a, b) ** 2, (near_quarter, near_three_quarters)),
    "where": (lambda a, b: cr.where(a.data > 0, a, b) ** 2, (normal, normal)),
    "softmax": (lambda a: cr.softmax(a, axis=0), (normal,)),
    "log_softmax": (lambda a: cr.log_softmax(a, axis=-1), (normal,)),
    "logsumexp": (lambda a: cr.logsumexp(a, axis=0), (normal,)),
    "sum": (lambda a: cr.sum(a, axis=0) ** 2, (normal,)),
    "mean": (lambda a: a.mean(axis=-1, keepdims=True) ** 2, (normal,)),
    "var": (lambda a: cr.var(a, axis=0), (normal,)),
    "std": (lambda a: cr.std(a), (distinct,)),
    "max": (lambda a: cr.max(a, axis=-1) ** 2, (distinct,)),
    "min": (lambda a: a.min() ** 2, (distinct,)),
    "matmul": (lambda a, b: a @ b, (normal, normal)),
    "getitem (repeats)": (lambda a: a[[0, 0, -1]] ** 2, (normal,)),
    "getitem (slice)": (lambda a: a[::-1, None] ** 2, (normal,)),
    "getitem (mask)": (lambda a: a[a.data > 0] ** 2, (normal,)),
    "reshape": (lambda a: a.reshape(-1) ** 2, (normal,)),
    "transpose": (lambda a: a.T ** 2, (normal,)),
    "broadcast_to": (lambda a: cr.broadcast_to(a, (2,) + a.shape) ** 2, (normal,)),
    "concatenate": (lambda a, b: cr.concatenate([a, b, a], axis=0) ** 2, (normal, normal)),
    "stack": (lambda a, b: cr.stack([a, b], axis=-1) ** 2, (normal, normal)),
    "astype": (lambda a: a.astype(np.float64) ** 2, (normal,)),
    "log1p": (cr.log1p, (positive,)),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1) ** 2, (away_from_zero,)),
    "elu": (F.elu, (away_from_zero,)),
    "softplus": (lambda a: F.softplus(a, beta=2.0), (normal,)),
    "normal_cdf (through gelu)": (F.gelu, (normal,)),
    "linear": (lambda a, w, b: cr.tanh(F.linear(a, w, b)), (normal, normal, normal)),
    "cross_entropy": (lambda a: F.cross_entropy(a, _labels(a)), (normal,)),
    "hinge_loss": (lambda a: F.hinge_loss(a**2, _labels(a)), (distinct,)),
    "binary_cross_entropy_with_logits": (
        lambda a, t: F.binary_cross_entropy_with_logits(a, cr.sigmoid(t)), (normal, normal)),
}
# Operations whose backward rule is exercised by another operation's second-order check.
COVERED_ELSEWHERE = {
    "index_add": "the backward of getitem: every 'getitem' check above differentiates it",
}
# Operations with no second-order check of their own, and why none is needed.
EXEMPT = {}


def _labels(scores):
    rows, cols = scores.shape
    return np.arange(rows) % cols


def _shapes(name, rows, cols, count):
    if name == "matmul":
        return [(rows, cols), (cols, 2)]
    if name == "linear":
        return [(rows, cols), (2, cols), (2,)]
    return [(rows, cols)] * count


def test_every_operation_has_a_second_order_check():
    """A new Function needs a SECOND_ORDER entry (keyed by its public name) or a reason."""
    from chainrule.engine import OPERATIONS

    library = {name for name, fn in OPERATIONS.items() if fn.__module__.startswith("chainrule.")}
    checked = {key.split(" (")[0] for key in SECOND_ORDER}
    missing = sorted(library - checked - set(COVERED_ELSEWHERE) - set(EXEMPT))
    assert not missing, f"operations without a second-order check or exemption: {missing}"
    assert set(COVERED_ELSEWHERE) | set(EXEMPT) <= library


@pytest.mark.parametrize("name", SECOND_ORDER)
@settings(max_examples=EXAMPLES_PER_TEST // 3 + 2, deadline=None)
@given(rows=st.integers(1, 3), cols=st.integers(2, 3), seed=seeds)
def test_second_order(name, rows, cols, seed):
    f, draws = SECOND_ORDER[name]
    rng = np.random.default_rng(seed)
    shapes_ = _shapes(name, rows, cols, len(draws))
    check_second_order(f, *(leaf(draw(rng, shape)) for draw, shape in zip(draws, shapes_)))


def test_second_derivative_of_broadcast_binary_operations():
    rng = np.random.default_rng(3)
    a, b = leaf(normal(rng, (3, 1))), leaf(away_from_zero(rng, (4,)))
    check_second_order(lambda a, b: a * b * a / b**2, a, b)
    check_second_order(lambda a, b: cr.tanh(a @ b[None, :1]), a, b)
    batch_a, batch_b = leaf(normal(rng, (2, 1, 3, 4))), leaf(normal(rng, (5, 4, 2)))
    check_second_order(lambda a, b: cr.sigmoid(a @ b), batch_a, batch_b)
