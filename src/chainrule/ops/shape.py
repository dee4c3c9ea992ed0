"""Operations that move values around without changing them: reshape, transpose,
broadcast, indexing, concatenate, stack. Their backward rules move the gradient back."""

from __future__ import annotations

import math

import numpy as np

from ..engine import Function
from ..errors import ShapeError
from ..tensor import data_of


class Reshape(Function):
    name = "reshape"

    @staticmethod
    def forward(ctx, a, shape=None):
        try:
            return np.reshape(a, shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape {np.shape(a)} ({np.size(a)} elements) into "
                f"{tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, upstream):
        return upstream.reshape(np.shape(ctx.inputs[0]))


def reshape(x, shape):
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    return Reshape.apply(x, shape=shape)


class Transpose(Function):
    """Permute the axes (all reversed when ``axes`` is None); backward applies the inverse."""

    name = "transpose"

    @staticmethod
    def forward(ctx, a, axes=None):
        if axes is not None and sorted(int(x) % max(np.ndim(a), 1) for x in axes) != list(
            range(np.ndim(a))
        ):
            raise ShapeError(f"transpose: axes {tuple(axes)} are not a permutation of the "
                             f"{np.ndim(a)} axes of shape {np.shape(a)}")
        ctx.axes = axes
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, upstream):
        if ctx.axes is None:
            return upstream.transpose()
        return upstream.transpose(tuple(np.argsort([int(x) % upstream.ndim for x in ctx.axes])))


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


class BroadcastTo(Function):
    """Repeat along new or size-1 axes; the engine sums the gradient of the copies back."""

    name = "broadcast_to"
    symbol = "broadcast"

    @staticmethod
    def forward(ctx, a, shape=None):
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ShapeError(f"broadcast_to: cannot broadcast {np.shape(a)} to {tuple(shape)}"
                             ) from None

    @staticmethod
    def backward(ctx, upstream):
        return upstream


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


class GetItem(Function):
    """Indexing with slices, integers, integer arrays or boolean masks. The gradient is
    scattered back to where the values came from; an element picked twice receives
    both gradients."""

    name = "getitem"
    symbol = "[]"

    @staticmethod
    def forward(ctx, a, index=None):
        ctx.index = index
        try:
            return a[index]
        except IndexError as e:
            raise ShapeError(f"getitem: index {index!r} does not fit shape {np.shape(a)}: {e}"
                             ) from None

    @staticmethod
    def backward(ctx, upstream):
        a = ctx.inputs[0]
        return ctx.xp.index_add(np.shape(a), ctx.index, upstream, _dtype(a))


def getitem(x, index):
    return GetItem.apply(x, index=_index(index))


def _index(index):
    """An index with any Tensors in it replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(data_of(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return data_of(index)


class IndexAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``index``: the backward of indexing,
    recorded as an operation so that it can itself be differentiated."""

    name = "index_add"

    @staticmethod
    def forward(ctx, values, shape=None, index=None, dtype=None):
        ctx.index = index
        return index_add_array(shape, index, values, dtype)

    @staticmethod
    def backward(ctx, upstream):
        return upstream[ctx.index]


class Concatenate(Function):
    name = "concatenate"
    symbol = "concat"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"concatenate: shapes {shapes} differ outside axis {axis}"
                             ) from None
        ctx.axis = axis % out.ndim
        ctx.bounds = np.cumsum([0] + [np.shape(a)[ctx.axis] for a in arrays])
        return out

    @staticmethod
    def backward(ctx, upstream):
        lead = (slice(None),) * ctx.axis
        return tuple(
            upstream[lead + (slice(int(lo), int(hi)),)] if need else None
            for lo, hi, need in zip(ctx.bounds[:-1], ctx.bounds[1:], ctx.needs_input_grad)
        )


def concatenate(tensors, axis=0):
    return Concatenate.apply(*tensors, axis=axis)


class Stack(Function):
    name = "stack"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.stack(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"stack: all shapes must be equal, got {shapes}") from None
        ctx.axis = axis % out.ndim
        return out

    @staticmethod
    def backward(ctx, upstream):
        lead = (slice(None),) * ctx.axis
        return tuple(upstream[lead + (i,)] if need else None
                     for i, need in enumerate(ctx.needs_input_grad))


def stack(tensors, axis=0):
    return Stack.apply(*tensors, axis=axis)


def _dtype(a):
    return a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype


SMALL_BROADCAST = 4096  # elements up to which a rule's broadcast is made as a new array


def broadcast_array(a, shape):
    """``np.broadcast_to`` for backward rules on arrays. ``np.broadcast_to`` spends a few
    microseconds in Python making its read-only view, more than filling a small array
    takes; so a result of up to ``SMALL_BROADCAST`` elements is a new array, and a larger
    one the view (no memory for the copies)."""
    dtype = getattr(a, "dtype", None)
    if dtype is None or math.prod(shape) > SMALL_BROADCAST:
        return np.broadcast_to(a, shape)
    out = np.empty(shape, dtype)
    out[...] = a
    return out


def index_add_array(shape, index, values, dtype=None):
    """Zeros of ``shape`` with ``values`` added at ``index``; repeated indices accumulate.
    The backward of indexing on plain arrays (``IndexAdd`` records the same on Tensors)."""
    out = np.zeros(shape, dtype=values.dtype if dtype is None else dtype)
    if _is_basic_index(index):
        out[index] = values  # a basic index selects each element at most once
    else:
        np.add.at(out, index, values)
    return out


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, int | slice) for p in parts)
