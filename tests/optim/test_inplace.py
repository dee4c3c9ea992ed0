"""The in-place operations of optim.inplace: each against its formula written plainly,
in float64 and float32, with the aliasing the docstrings allow, and without allocating."""

import tracemalloc

import numpy as np
import pytest

from chainrule.optim import inplace
from chainrule.optim.optimizer import Scratch

RNG = np.random.default_rng(3)
A, B, C = RNG.standard_normal((3, 5, 4))
D = np.abs(RNG.standard_normal((5, 4))) + 0.5  # a denominator away from zero

# name -> (call on copies t, x, y, work; the formula on the originals)
CASES = {
    "add_scaled_": (lambda t, x, y, w: inplace.add_scaled_(t, x, -0.3, w),
                    lambda: A + -0.3 * B),
    "add_scaled_-alpha-1": (lambda t, x, y, w: inplace.add_scaled_(t, x, 1, w),
                            lambda: A + B),
    "add_scaled_-work-is-x": (lambda t, x, y, w: inplace.add_scaled_(t, x, 2.5, x),
                              lambda: A + 2.5 * B),
    "add_scaled": (lambda t, x, y, w: inplace.add_scaled(x, y, 0.7, out=t),
                   lambda: B + 0.7 * D),
    "addcmul_": (lambda t, x, y, w: inplace.addcmul_(t, x, y, 0.2, w),
                 lambda: A + 0.2 * B * D),
    "addcmul_-value-1": (lambda t, x, y, w: inplace.addcmul_(t, x, x, 1, w),
                         lambda: A + B * B),
    "addcdiv_": (lambda t, x, y, w: inplace.addcdiv_(t, x, y, -0.4, w),
                 lambda: A - 0.4 * B / D),
    "addcdiv_-work-is-y": (lambda t, x, y, w: inplace.addcdiv_(t, x, y, -0.4, y),
                           lambda: A - 0.4 * B / D),
    "lerp_-small-weight": (lambda t, x, y, w: inplace.lerp_(t, x, 0.1, w),
                           lambda: A + 0.1 * (B - A)),
    "lerp_-large-weight": (lambda t, x, y, w: inplace.lerp_(t, x, 0.9, w),
                           lambda: A + 0.9 * (B - A)),
    "decoupled_decay_": (lambda t, x, y, w: inplace.decoupled_decay_(t, 0.1, 0.5),
                         lambda: A * (1 - 0.1 * 0.5)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_operation_matches_its_formula(name, dtype):
    call, formula = CASES[name]
    target, x, y = A.astype(dtype), B.astype(dtype), D.astype(dtype)
    work = np.empty_like(target)
    result = call(target, x, y, work)
    assert target.dtype == dtype
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(target, formula(), rtol=rtol, atol=rtol)
    assert result is None or result is target  # in place, or written into out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_operands_are_the_same_numbers_in_the_parameters_dtype(dtype):
    values = (0.9, 0.1, -1e-3, 1e-8, 1, 0)
    operands = inplace.as_operands(np.dtype(dtype), *values)
    assert operands is inplace.as_operands(np.dtype(dtype), *values)  # kept
    for value, operand in zip(values[:4], operands):
        assert operand.shape == () and operand.dtype == dtype and not operand.flags.writeable
        assert operand == dtype(value)
    assert operands[4:] == (1, 0)  # numbers: the shortcuts see them
    # the update computes what it computes with the Python float
    x = A.astype(dtype)
    np.testing.assert_array_equal(x * operands[0], x * 0.9)
    # a population's array hyperparameter is used as it is
    lr = np.array([[0.1], [0.2]])
    assert inplace.as_operands(np.dtype(dtype), 0.9, lr)[1] is lr


def test_lerp_rounds_as_pytorch_does():
    # weight >= 0.5 computes end - (end - start) * (1 - weight): exactly `end` at weight 1
    start, end = np.array([0.1, 1e16]), np.array([0.3, 1.0])
    inplace.lerp_(start, end, 1.0, np.empty(2))
    np.testing.assert_array_equal(start, end)


def test_decayed_grad_leaves_the_gradient_alone():
    grad, param = B.copy(), A.copy()
    scratch = Scratch(A.shape, A.dtype)
    assert inplace.decayed_grad(grad, param, 0, scratch) is grad
    assert not scratch  # no array was made for it
    out = inplace.decayed_grad(grad, param, 0.3, scratch)
    assert out is scratch["decayed_grad"]
    np.testing.assert_allclose(out, B + 0.3 * A, rtol=1e-14)
    np.testing.assert_array_equal(grad, B)
    np.testing.assert_array_equal(param, A)


@pytest.mark.parametrize("name", list(CASES))
def test_operations_allocate_nothing(name):
    call, _ = CASES[name]
    big = [np.full(50_000, v) for v in (1.0, 2.0, 3.0, 0.0)]
    tracemalloc.start()
    try:
        call(*big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < big[0].nbytes // 10


def test_scratch_makes_each_named_array_once():
    scratch = Scratch((2, 3), np.float32)
    work = scratch["work"]
    assert work.shape == (2, 3) and work.dtype == np.float32
    assert scratch["work"] is work
    assert scratch["decayed_grad"] is not work
