"""Matrix multiplication, and the fused affine map of a linear layer."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..engine import Function
from ..errors import ShapeError


class MatMul(Function):
    """``a @ b`` for 1-D, 2-D and batched operands, with NumPy's rules.

    Backward never forms the Jacobian (for a (N, D) @ (D, M) product it would have
    N*M x N*D entries); it uses the two products that give the same result:
    dL/da = g @ b^T and dL/db = a^T @ g.
    """

    name = "matmul"
    symbol = "@"

    @staticmethod
    def forward(ctx, a, b):
        a_shape, b_shape = np.shape(a), np.shape(b)
        if len(a_shape) == 0 or len(b_shape) == 0:
            raise ShapeError(f"matmul: {a_shape} @ {b_shape}: operands must have at least "
                             "one dimension (use * to scale)")
        k_a = a_shape[-1]
        k_b = b_shape[-2] if len(b_shape) > 1 else b_shape[0]
        if k_a != k_b:
            raise ShapeError(f"matmul: {a_shape} @ {b_shape}: inner dimensions {k_a} and {k_b} "
                             "differ")
        try:
            return np.matmul(a, b)
        except ValueError:
            raise ShapeError(f"matmul: {a_shape} @ {b_shape}: batch dimensions "
                             f"{a_shape[:-2]} and {b_shape[:-2]} do not broadcast") from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:  # the common case, without reshapes
            return g @ b.T if need_a else None, a.T @ g if need_b else None
        a2 = a if a.ndim > 1 else a.reshape(1, -1)
        b2 = b if b.ndim > 1 else b.reshape(-1, 1)
        if a.ndim == 1 and b.ndim == 1:
            g2 = g.reshape(1, 1)
        elif a.ndim == 1:
            g2 = g[..., None, :]
        elif b.ndim == 1:
            g2 = g[..., None]
        else:
            g2 = g
        ga = gb = None
        if need_a:
            ga = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if need_b:
            gb = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb  # batch axes that were broadcast are summed away by the engine


def matmul(a, b):
    """Matrix product with NumPy's rules: (..., n, k) @ (..., k, m) -> (..., n, m); 1-D
    operands are treated as row (left) or column (right) vectors."""
    return MatMul.apply(a, b)


def stored_transposed(weight) -> bool:
    """Whether a 2-D weight of shape (out, in) is the transpose of a row-major (in, out)
    array, as ``nn.Linear`` keeps it: then ``x @ W^T`` multiplies by a row-major
    matrix, and the weight's gradient is computed as ``(x^T g)^T`` into memory of the
    same layout (the products BLAS runs fastest, those of an (in, out) weight)."""
    flags = getattr(weight, "flags", None)  # a Tensor (double backward) has none
    return (flags is not None and weight.ndim == 2 and flags.f_contiguous
            and not flags.c_contiguous)


@functools.lru_cache(maxsize=64)
def batch_ones(length, dtype):
    """A read-only vector of ``length`` ones (cached): ``batch_ones(N) @ g`` sums g's N
    rows. As a matrix-vector product (BLAS) that takes a third to a tenth of the time
    of ``np.add.reduce(g, axis=0)``, which walks a C-ordered g one row at a time."""
    ones = np.ones(length, dtype)
    ones.flags.writeable = False
    return ones


class Linear(Function):
    """y = x W^T + b for x of shape (*, in_features), W (out_features, in_features).

    One node instead of a matmul, a transpose and an add. Backward, without forming any
    Jacobian: dL/dx = g W, dL/dW = g^T x, dL/db = sum of g over the batch. The weight's
    gradient has the weight's memory layout (``stored_transposed``).
    """

    name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        shape = getattr(x, "shape", ())
        if not shape or shape[-1] != weight.shape[1]:
            raise ShapeError(f"linear: input {shape} has {shape[-1:] or 'no'} "
                             f"features but the layer takes {weight.shape[1]} "
                             f"(weight {weight.shape})")
        if x.dtype.kind != "f":  # integer inputs compute in the layer's dtype (as float data)
            x = x.astype(weight.dtype)
        out = x @ weight.T
        if bias is not None:
            out += bias  # into the fresh product: no second array
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.inputs[:2]
        needs = ctx.needs_input_grad
        if x.dtype.kind != "f":
            x = x.astype(weight.dtype)
        # fold batch axes together: the weight sees every row alike (sizes spelled out,
        # since -1 is ambiguous when there are no features)
        if x.ndim != 2:
            x = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])
        g2 = g if g.ndim == 2 else g.reshape(math.prod(g.shape[:-1]), g.shape[-1])
        gx = (g @ weight) if needs[0] else None
        if type(g2) is not np.ndarray:  # Tensors: a double backward, recorded
            gw = g2.T @ x if needs[1] else None
            gb = g2.sum(axis=0) if len(needs) > 2 and needs[2] else None
            return (gx, gw, gb) if len(needs) > 2 else (gx, gw)
        gw = None
        if needs[1]:  # an array of the weight's own layout (see stored_transposed)
            dtype = g2.dtype if g2.dtype == x.dtype else np.result_type(g2.dtype, x.dtype)
            if stored_transposed(weight):
                gw = np.empty(weight.shape, dtype, order="F")
                np.matmul(x.T, g2, out=gw.T)
            else:
                gw = np.empty(weight.shape, dtype)
                np.matmul(g2.T, x, out=gw)
        if len(needs) == 2:
            return gx, gw
        # the sum over the batch as a matrix-vector product (see batch_ones)
        gb = batch_ones(g2.shape[0], g2.dtype) @ g2 if needs[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """x W^T + b. Shapes: x (*, in), weight (out, in), bias (out,) -> (*, out)."""
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)
