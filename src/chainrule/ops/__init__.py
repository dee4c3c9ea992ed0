"""Every differentiable operation, as a function with NumPy's name and semantics.

Each function accepts Tensors, NumPy arrays and Python numbers, broadcasts as NumPy
does, and returns a Tensor. The operations themselves (forward beside backward) live in
``elementwise``, ``reduction``, ``shape`` and ``linalg``.
"""

from __future__ import annotations

import numpy as np

from .. import engine
from ..errors import ShapeError
from ..tensor import Tensor, data_of
from .elementwise import (
    Abs,
    Add,
    AsType,
    Clip,
    Divide,
    Exp,
    Log,
    Maximum,
    Minimum,
    Multiply,
    Negative,
    Power,
    ReLU,
    Sigmoid,
    Sqrt,
    Subtract,
    Tanh,
    Where,
)
from .linalg import MatMul
from .reduction import LogSoftmax, LogSumExp, Max, Mean, Min, Softmax, Sum, Var
from .shape import BroadcastTo, Concatenate, GetItem, IndexAdd, Reshape, Stack, Transpose


def add(a, b):
    return Add.apply(a, b)


def subtract(a, b):
    return Subtract.apply(a, b)


def multiply(a, b):
    return Multiply.apply(a, b)


def divide(a, b):
    return Divide.apply(a, b)


def power(a, b):
    return Power.apply(a, b)


def negative(a):
    return Negative.apply(a)


def matmul(a, b):
    """Matrix product with NumPy's rules: (..., n, k) @ (..., k, m) -> (..., n, m); 1-D
    operands are treated as row (left) or column (right) vectors."""
    return MatMul.apply(a, b)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs(x):
    return Abs.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return ReLU.apply(x)


def maximum(a, b):
    """Elementwise max; the gradient goes to the larger input, split in half at ties."""
    return Maximum.apply(a, b)


def minimum(a, b):
    """Elementwise min; the gradient goes to the smaller input, split in half at ties."""
    return Minimum.apply(a, b)


def clip(x, min=None, max=None):
    """Clamp into [min, max]; the gradient passes where min <= x <= max."""
    return Clip.apply(x, low=data_of(min), high=data_of(max))


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b``; the condition is not differentiated."""
    return Where.apply(a, b, condition=np.asarray(data_of(condition), dtype=bool))


def astype(x, dtype):
    return AsType.apply(x, dtype=np.dtype(dtype))


def sum(x, axis=None, keepdims=False):
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    """Largest values along ``axis`` (values only, like ``np.max``); ties share the gradient."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    return Min.apply(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, ddof=0, keepdims=False):
    """Variance with NumPy's default ``ddof=0`` (PyTorch's default is 1)."""
    return Var.apply(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std(x, axis=None, ddof=0, keepdims=False):
    return sqrt(var(x, axis, ddof, keepdims))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) along ``axis``, stable for any finite input."""
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, stable for any finite input."""
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis``, stable for any finite input."""
    return LogSoftmax.apply(x, axis=axis)


def reshape(x, shape):
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    return Reshape.apply(x, shape=shape)


def transpose(x, axes=None):
    return Transpose.apply(x, axes=None if axes is None else tuple(axes))


def permute(x, *dims):
    one = len(dims) == 1 and not isinstance(dims[0], int | np.integer)
    return transpose(x, dims[0] if one else dims)


def swapaxes(x, axis1, axis2):
    ndim = np.ndim(data_of(x))
    for a in (axis1, axis2):
        if not -ndim <= a < ndim:
            raise ShapeError(f"swapaxes: axis {a} is out of range for shape {np.shape(data_of(x))}")
    axes = list(range(ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


def broadcast_to(x, shape):
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    return BroadcastTo.apply(x, shape=shape)


def expand(x, *sizes):
    """PyTorch's expand: broadcast to ``sizes``; -1 keeps that dimension's size."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], tuple | list) else sizes
    shape = np.shape(data_of(x))
    lead = len(sizes) - len(shape)
    target = tuple(shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return broadcast_to(x, target)


def getitem(x, index):
    return GetItem.apply(x, index=_index(index))


def concatenate(tensors, axis=0):
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    return Stack.apply(*tensors, axis=axis)


def _index(index):
    """An index with any Tensors in it replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(data_of(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return data_of(index)


class TensorMath:
    """The functions backward rules call through ``ctx.xp`` when the backward pass is
    itself recorded (``create_graph=True``)."""

    exp = staticmethod(exp)
    log = staticmethod(log)
    where = staticmethod(where)
    broadcast_to = staticmethod(broadcast_to)

    @staticmethod
    def index_add(shape, index, values, dtype=None):
        return IndexAdd.apply(values, shape=shape, index=index, dtype=dtype)


engine.TENSOR_MATH = TensorMath()
