"""Operations that move values around without changing them: reshape, transpose,
broadcast, indexing, concatenate, stack. Their backward rules move the gradient back."""

from __future__ import annotations

import numpy as np

from ..engine import Function, _index_add
from ..errors import ShapeError


class Reshape(Function):
    symbol = "reshape"

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


class Transpose(Function):
    """Permute the axes (all reversed when ``axes`` is None); backward applies the inverse."""

    symbol = "transpose"

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


class BroadcastTo(Function):
    """Repeat along new or size-1 axes; the engine sums the gradient of the copies back."""

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


class GetItem(Function):
    """Indexing with slices, integers, integer arrays or boolean masks. The gradient is
    scattered back to where the values came from; an element picked twice receives
    both gradients."""

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


class IndexAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``index``: the backward of indexing,
    recorded as an operation so that it can itself be differentiated."""

    symbol = "index_add"

    @staticmethod
    def forward(ctx, values, shape=None, index=None, dtype=None):
        ctx.index = index
        return _index_add(shape, index, values, dtype)

    @staticmethod
    def backward(ctx, upstream):
        return upstream[ctx.index]


class Concatenate(Function):
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


class Stack(Function):
    symbol = "stack"

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


def _dtype(a):
    return a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype
