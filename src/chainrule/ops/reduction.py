"""Reductions over axes, and the numerically stable softmax family.

Each reduction's backward first puts the reduced axes back (as size 1) and then
broadcasts the upstream gradient over them: every input element that was summed
receives the gradient of the sum.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..engine import Function
from ..errors import ShapeError
from .elementwise import sqrt
from .shape import SMALL_BROADCAST


def normalize_axes(axis, ndim: int, op: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    result = []
    for a in axes:
        if not -(ndim or 1) <= a < (ndim or 1):
            raise ShapeError(f"{op}: axis {a} is out of range for an array of {ndim} dimensions")
        result.append(int(a) % (ndim or 1))
    if len(set(result)) != len(result):
        raise ShapeError(f"{op}: repeated axis in {axis}")
    if ndim == 0:  # as in PyTorch, axis 0 (or -1) of a single value reduces nothing
        return ()
    return tuple(sorted(result))


def kept_shape(shape, axes) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1 (what keepdims=True gives)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


_ALL_AXES = tuple(tuple(range(n)) for n in range(8))  # axis=None, by number of dimensions


class _Reduction(Function):
    """Shared set-up: remember the input shape and the reduced axes."""

    @classmethod
    def prepare(cls, ctx, a, axis):
        """Remember the input's shape, the kept-axes shape and how many elements each
        output value reduces (``ctx.count``); returns the reduced axes."""
        shape = a.shape if type(a) is np.ndarray else np.shape(a)
        if axis is None:  # the whole array (an L2 term's sum, a mean loss): no axis to check
            ndim = len(shape)
            ctx.shape, ctx.kept, ctx.count = shape, (1,) * ndim, math.prod(shape)
            return _ALL_AXES[ndim] if ndim < len(_ALL_AXES) else tuple(range(ndim))
        axes = normalize_axes(axis, len(shape), cls.name)
        ctx.shape, ctx.kept = shape, kept_shape(shape, axes)
        ctx.count = math.prod([shape[i] for i in axes])
        return axes

    @classmethod
    def empty_axis_error(cls, ctx):
        return ShapeError(f"{cls.name}: cannot reduce over an empty axis, of length 0 (input shape "
                          f"{ctx.shape}); NumPy and PyTorch refuse this too")

    @staticmethod
    def spread(ctx, upstream):
        """The upstream gradient with the reduced axes restored, broadcast to the input."""
        if type(upstream) is np.ndarray and upstream.size == 1 and ctx.count <= SMALL_BROADCAST:
            # one value over a small input: filled in one call (no reshape, no view)
            return np.full(ctx.shape, upstream.reshape(()), upstream.dtype)
        return ctx.xp.broadcast_to(upstream.reshape(ctx.kept), ctx.shape)

    @staticmethod
    def spread_whole(ctx, value):
        """The gradient of a reduction over the whole input (which saved nothing on
        ``ctx``: see ``Sum.forward``): ``value``, one number, at every element."""
        shape = ctx.inputs[0].shape
        if isinstance(value, np.ndarray | np.generic) and math.prod(shape) <= SMALL_BROADCAST:
            grad = np.empty(shape, value.dtype)  # filling costs less than np.full's wrapper
            grad[...] = value  # (a value of keepdims=True's shape broadcasts)
            return grad
        return ctx.xp.broadcast_to(value.reshape((1,) * len(shape)), shape)


class Sum(_Reduction):
    name = "sum"

    @classmethod
    def forward(cls, ctx, a, axis=None, keepdims=False):
        if axis is None and type(a) is np.ndarray:
            # the whole array (an L2 term, a loss): nothing to save, the rule reads the
            # input's shape; np.sum's dispatch costs more than a small sum
            return np.add.reduce(a, axis=None, keepdims=keepdims)
        axes = cls.prepare(ctx, a, axis)
        if type(a) is np.ndarray:
            return np.add.reduce(a, axis=axes, keepdims=keepdims)
        return np.sum(a, axis=axes, keepdims=keepdims)

    @classmethod
    def backward(cls, ctx, upstream):
        if "kept" not in ctx.__dict__:  # over the whole array
            return cls.spread_whole(ctx, upstream)
        return cls.spread(ctx, upstream)


def sum(x, axis=None, keepdims=False):
    if axis is None and not keepdims:  # no parameters to pass: the cheaper call
        return Sum.apply(x)
    return Sum.apply(x, axis=axis, keepdims=keepdims)


class Mean(_Reduction):
    name = "mean"

    @classmethod
    def forward(cls, ctx, a, axis=None, keepdims=False):
        if (axis is None and type(a) is np.ndarray and a.dtype.kind == "f"
                and a.itemsize >= 4 and a.size):
            # the whole array, as Sum: what np.mean computes for float32/64 (the sum, then
            # divided by the count in the sum's dtype), without its Python wrapper
            return np.add.reduce(a, axis=None, keepdims=keepdims) / a.size
        axes = cls.prepare(ctx, a, axis)
        if ctx.count == 0:  # the mean of nothing is NaN, as in PyTorch, without a warning
            with warnings.catch_warnings(), np.errstate(invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.mean(a, axis=axes, keepdims=keepdims)
        return np.mean(a, axis=axes, keepdims=keepdims)

    @classmethod
    def backward(cls, ctx, upstream):
        if "kept" not in ctx.__dict__:  # over the whole array, which is not empty
            return cls.spread_whole(ctx, upstream / ctx.inputs[0].size)
        # over an empty axis the input, and so its gradient, is empty: no 0 to divide by
        return cls.spread(ctx, upstream / ctx.count if ctx.count else upstream)


def mean(x, axis=None, keepdims=False):
    if axis is None and not keepdims:  # as sum
        return Mean.apply(x)
    return Mean.apply(x, axis=axis, keepdims=keepdims)


class Max(_Reduction):
    """Largest value along axes. The gradient goes to the element that was largest; when
    several are equal it is shared evenly among them (as ``torch.amax``)."""

    name = "max"
    pick = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, a, axis=None, keepdims=False):
        axes = cls.prepare(ctx, a, axis)
        if ctx.count == 0:  # there is no largest element of nothing
            raise cls.empty_axis_error(ctx)
        best = cls.pick(a, axis=axes, keepdims=True)
        winners = a == best
        ctx.share = winners / winners.sum(axis=axes, keepdims=True, dtype=best.dtype)
        return best if keepdims else best.squeeze(axes)

    @classmethod
    def backward(cls, ctx, upstream):
        return upstream.reshape(ctx.kept) * ctx.share


def max(x, axis=None, keepdims=False):
    """Largest values along ``axis`` (values only, like ``np.max``); ties share the gradient."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


class Min(Max):
    """Smallest value along axes; ties share the gradient evenly."""

    name = "min"
    pick = staticmethod(np.min)


def min(x, axis=None, keepdims=False):
    return Min.apply(x, axis=axis, keepdims=keepdims)


class Var(_Reduction):
    """Variance ``sum((x - mean)^2) / (n - ddof)``; local gradient 2 (x - mean) / (n - ddof)."""

    name = "var"

    @classmethod
    def forward(cls, ctx, a, axis=None, ddof=0, keepdims=False):
        axes = cls.prepare(ctx, a, axis)
        ctx.axes, ctx.divisor = axes, ctx.count - ddof
        if ctx.divisor <= 0:  # NaN or inf, as in PyTorch, without NumPy's warnings
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.var(a, axis=axes, ddof=ddof, keepdims=keepdims)
        return np.var(a, axis=axes, ddof=ddof, keepdims=keepdims)

    @classmethod
    def backward(cls, ctx, upstream):
        (a,) = ctx.inputs
        if ctx.count == 0:  # an empty input gets an empty gradient
            return cls.spread(ctx, upstream) * 0
        centered = a - a.mean(axis=ctx.axes, keepdims=True)
        # a divisor of 0 (ddof >= n) gives inf times the deviations, NaN where they are 0
        scale = 2 / ctx.divisor if ctx.divisor else np.inf
        with np.errstate(invalid="ignore"):
            return upstream.reshape(ctx.kept) * centered * scale


def var(x, axis=None, ddof=0, keepdims=False):
    """Variance with NumPy's default ``ddof=0`` (PyTorch's default is 1)."""
    return Var.apply(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std(x, axis=None, ddof=0, keepdims=False):
    return sqrt(var(x, axis, ddof, keepdims))


class LogSumExp(_Reduction):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m the max, so that it
    never overflows; its local gradient is softmax(x)."""

    name = "logsumexp"
    saves_output = True

    @classmethod
    def forward(cls, ctx, a, axis=None, keepdims=False):
        axes = cls.prepare(ctx, a, axis)
        if ctx.count == 0:  # the log of an empty sum: -inf, as in PyTorch and SciPy
            out = np.full(ctx.kept, -np.inf, dtype=np.result_type(a, np.float32))
            return out if keepdims else out.squeeze(axes)
        m = np.max(a, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        out = np.log(np.sum(np.exp(a - m), axis=axes, keepdims=True)) + m
        return out if keepdims else out.squeeze(axes)

    @classmethod
    def backward(cls, ctx, upstream):
        (a,) = ctx.inputs
        return upstream.reshape(ctx.kept) * ctx.xp.exp(a - ctx.out.reshape(ctx.kept))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) along ``axis``, stable for any finite input."""
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


class Softmax(Function):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max so it never overflows.

    Backward: s * (g - sum(g * s)), the Jacobian-vector product without the Jacobian.
    """

    name = "softmax"
    saves_output = True

    @classmethod
    def forward(cls, ctx, a, axis=-1):
        ctx.axis = axis if normalize_axes(axis, np.ndim(a), cls.name) else None
        return stable_softmax(a, axis)

    @staticmethod
    def backward(ctx, upstream):
        s = ctx.out
        return s * (upstream - (upstream * s).sum(axis=ctx.axis, keepdims=True))


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, stable for any finite input."""
    return Softmax.apply(x, axis=axis)


def stable_softmax(a, axis=-1):
    """Softmax of an array along ``axis``, shifted by the max so that it never overflows."""
    if np.ndim(a) == 0:  # a single value: its own normaliser, 1 (NaN for inf, as in PyTorch)
        return np.exp(a - a)
    if np.shape(a)[axis] == 0:  # nothing to normalise: an empty result, as in PyTorch
        return np.exp(a)
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


class LogSoftmax(Function):
    """x - logsumexp(x) along ``axis``; backward g - softmax(x) * sum(g)."""

    name = "log_softmax"
    saves_output = True

    @classmethod
    def forward(cls, ctx, a, axis=-1):
        ctx.axis = axis if normalize_axes(axis, np.ndim(a), cls.name) else None
        if np.ndim(a) == 0:  # a single value is its own normaliser: log 1 = 0
            return a - a
        if np.shape(a)[axis] == 0:  # nothing to normalise: an empty result, as in PyTorch
            return np.log(np.exp(a))
        shifted = a - np.max(a, axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    @staticmethod
    def backward(ctx, upstream):
        softmax = ctx.xp.exp(ctx.out)
        return upstream - softmax * upstream.sum(axis=ctx.axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis``, stable for any finite input."""
    return LogSoftmax.apply(x, axis=axis)
