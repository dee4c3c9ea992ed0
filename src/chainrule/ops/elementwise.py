"""Elementwise operations, each forward beside its backward.

Binary operations broadcast as NumPy does; their backward rules return gradients in the
broadcast shape and the engine sums them back to each input's shape.
"""

from __future__ import annotations

import functools

import numpy as np

from ..engine import Function
from ..tensor import data_of


class Add(Function):
    """Add gate: a gradient distributor. Both local gradients are 1, so each input
    receives the upstream gradient unchanged."""

    name = "add"
    elementwise = True
    symbol = "+"

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, upstream):
        return upstream, upstream


def add(a, b):
    return Add.apply(a, b)


class Subtract(Function):
    name = "subtract"
    elementwise = True
    symbol = "-"

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, upstream):
        return upstream, -upstream if ctx.needs_input_grad[1] else None


def subtract(a, b):
    return Subtract.apply(a, b)


class Multiply(Function):
    """Multiply gate: a gradient swapper. Each input's local gradient is the other input."""

    name = "multiply"
    elementwise = True
    symbol = "*"

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, upstream):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        return upstream * b if need_a else None, upstream * a if need_b else None


def multiply(a, b):
    return Multiply.apply(a, b)


class Divide(Function):
    name = "divide"
    elementwise = True
    symbol = "/"

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, upstream):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        return upstream / b if need_a else None, -upstream * a / (b * b) if need_b else None


def divide(a, b):
    return Divide.apply(a, b)


class Power(Function):
    """``a ** b``; d/da = b a^(b-1) and d/db = a^b ln a (taken as 0 where a = 0)."""

    name = "power"
    elementwise = True
    symbol = "**"
    saves_output = True

    @staticmethod
    def forward(ctx, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return a**b

    @staticmethod
    def backward(ctx, upstream):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        xp = ctx.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            ga = gb = None
            if need_a:
                ga = upstream * b * a ** (b - 1)
                exponent_zero = np.asarray(data_of(b) == 0)
                if exponent_zero.any():  # d(a^0)/da = 0, also at a = 0
                    ga = xp.where(exponent_zero, 0, ga)
            if need_b:
                zero = np.asarray(data_of(a) == 0)
                gb = upstream * ctx.out * xp.log(xp.where(zero, 1, a))
        return ga, gb


def power(a, b):
    return Power.apply(a, b)


class Negative(Function):
    name = "negative"
    elementwise = True
    symbol = "neg"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, upstream):
        return -upstream


def negative(a):
    return Negative.apply(a)


class Exp(Function):
    name = "exp"
    elementwise = True
    saves_output = True

    @staticmethod
    def forward(ctx, a):
        return np.exp(a)

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.out  # d/dx e^x = e^x, the forward value itself


def exp(x):
    return Exp.apply(x)


class Log(Function):
    name = "log"
    elementwise = True

    @staticmethod
    def forward(ctx, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    @staticmethod
    def backward(ctx, upstream):
        (a,) = ctx.inputs
        return upstream / a


def log(x):
    return Log.apply(x)


class Log1p(Function):
    """log(1 + x), accurate for x near 0 where log(1 + x) would round 1 + x."""

    name = "log1p"
    elementwise = True

    @staticmethod
    def forward(ctx, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(a)

    @staticmethod
    def backward(ctx, upstream):
        (a,) = ctx.inputs
        return upstream / (1 + a)


def log1p(x):
    return Log1p.apply(x)


class Sqrt(Function):
    name = "sqrt"
    elementwise = True
    saves_output = True

    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):
            return np.sqrt(a)

    @staticmethod
    def backward(ctx, upstream):
        with np.errstate(divide="ignore"):
            return upstream / (2 * ctx.out)


def sqrt(x):
    return Sqrt.apply(x)


class Abs(Function):
    """|x|; the local gradient is sign(x), taken as 0 at x = 0 (as PyTorch)."""

    name = "abs"
    elementwise = True

    @staticmethod
    def forward(ctx, a):
        ctx.sign = np.sign(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.sign


def abs(x):
    return Abs.apply(x)


class Tanh(Function):
    name = "tanh"
    elementwise = True
    saves_output = True

    @staticmethod
    def forward(ctx, a):
        return np.tanh(a)

    @staticmethod
    def backward(ctx, upstream):
        out = ctx.out
        return upstream * (1 - out * out)


def tanh(x):
    return Tanh.apply(x)


class Sigmoid(Function):
    """sigma(x) = 1 / (1 + e^-x), with local gradient sigma(x) (1 - sigma(x)).

    Computed from e^-|x|, which never overflows, so any finite input is safe.
    """

    name = "sigmoid"
    elementwise = True
    symbol = "σ"
    saves_output = True

    @staticmethod
    def forward(ctx, a):
        return stable_sigmoid(a)

    @staticmethod
    def backward(ctx, upstream):
        out = ctx.out
        return upstream * out * (1 - out)


def sigmoid(x):
    return Sigmoid.apply(x)


def stable_sigmoid(a):
    """1 / (1 + e^-a) on an array, from e^-|a| so that it never overflows."""
    e = np.exp(-np.abs(a))
    r = 1 / (1 + e)
    return np.where(a >= 0, r, e * r)


@functools.lru_cache(maxsize=32)
def _zeros(length, dtype):
    zeros = np.zeros(length, dtype)
    zeros.flags.writeable = False
    return zeros


def zero_row(a):
    """Zeros of ``a``'s last axis and float dtype (read-only, cached), for ``max(a, 0)``.

    NumPy's ``np.maximum(a, 0)`` compares with the scalar in a loop several times slower
    than the one it runs against an array broadcast along rows; the results are
    identical (NaN and -0.0 included). Any other ``a`` gets the plain ``0``.
    """
    if a.ndim == 0 or a.dtype.kind != "f":
        return 0
    return _zeros(a.shape[-1], a.dtype)


class ReLU(Function):
    """max(0, x): passes the upstream gradient where x > 0 and blocks it elsewhere."""

    name = "relu"
    elementwise = True

    @staticmethod
    def forward(ctx, a):
        ctx.mask = a > 0
        return np.maximum(a, zero_row(a))

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.mask


def relu(x):
    return ReLU.apply(x)


class Maximum(Function):
    """Max gate: a gradient router. The whole upstream gradient goes to the larger
    input and none to the other; where the two are equal it is split in half between
    them (as PyTorch does)."""

    name = "maximum"
    elementwise = True
    symbol = "max"

    @staticmethod
    def forward(ctx, a, b):
        out = np.maximum(a, b)
        ctx.share_a = _winner_share(a > b, a == b, out.dtype)
        return out

    @staticmethod
    def backward(ctx, upstream):
        need_a, need_b = ctx.needs_input_grad
        share_a = ctx.share_a
        return upstream * share_a if need_a else None, upstream * (1 - share_a) if need_b else None


def maximum(a, b):
    """Elementwise max; the gradient goes to the larger input, split in half at ties."""
    return Maximum.apply(a, b)


class Minimum(Function):
    """Min gate: routes the upstream gradient to the smaller input; equal inputs split it."""

    name = "minimum"
    elementwise = True
    symbol = "min"

    @staticmethod
    def forward(ctx, a, b):
        out = np.minimum(a, b)
        ctx.share_a = _winner_share(a < b, a == b, out.dtype)
        return out

    backward = Maximum.backward


def minimum(a, b):
    """Elementwise min; the gradient goes to the smaller input, split in half at ties."""
    return Minimum.apply(a, b)


def _winner_share(wins, ties, dtype):
    """The fraction of the gradient the first input receives: 1, 0, or 0.5 at a tie."""
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.float64
    return np.asarray(wins, dtype=dtype) + np.asarray(ties, dtype=dtype) * 0.5


class Clip(Function):
    """Clamp to [low, high]; the gradient passes only where low <= x <= high."""

    name = "clip"
    elementwise = True

    @classmethod
    def shape_error(cls, arrays, params):
        bounds = [params.get(k) for k in ("low", "high")]
        shapes = [None if b is None else np.shape(b) for b in bounds]
        return (f"clip: input of shape {np.shape(arrays[0])} and bounds min {shapes[0]}, "
                f"max {shapes[1]} do not broadcast together")

    @staticmethod
    def forward(ctx, a, low=None, high=None):
        out = np.clip(a, low, high)
        # in the output's shape: array bounds may broadcast the input to a larger one
        mask = np.ones(np.shape(out), dtype=bool)
        if low is not None:
            mask &= a >= low
        if high is not None:
            mask &= a <= high
        ctx.mask = mask
        return out

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.mask


def clip(x, min=None, max=None):
    """Clamp into [min, max]; the gradient passes where min <= x <= max."""
    return Clip.apply(x, low=data_of(min), high=data_of(max))


class Where(Function):
    """``where(condition, a, b)``: each gradient flows to the input that was chosen."""

    name = "where"
    elementwise = True

    @classmethod
    def shape_error(cls, arrays, params):
        shapes = (np.shape(params.get("condition")),) + tuple(np.shape(a) for a in arrays)
        return "where: condition, a and b of shapes " + ", ".join(map(str, shapes)) + \
            " do not broadcast together"

    @staticmethod
    def forward(ctx, a, b, condition=None):
        ctx.condition = condition
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, upstream):
        cond, xp = ctx.condition, ctx.xp
        need_a, need_b = ctx.needs_input_grad
        return (xp.where(cond, upstream, 0) if need_a else None,
                xp.where(cond, 0, upstream) if need_b else None)


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b``; the condition is not differentiated."""
    return Where.apply(a, b, condition=np.asarray(data_of(condition), dtype=bool))


class AsType(Function):
    """A cast; the engine casts the gradient back to the input's dtype."""

    name = "astype"
    elementwise = True
    symbol = "cast"

    @staticmethod
    def forward(ctx, a, dtype=None):
        return np.asarray(a).astype(dtype)

    @staticmethod
    def backward(ctx, upstream):
        return upstream


def astype(x, dtype):
    return AsType.apply(x, dtype=np.dtype(dtype))
