"""Matrix multiplication."""

from __future__ import annotations

import numpy as np

from ..engine import Function
from ..errors import ShapeError


class MatMul(Function):
    """``a @ b`` for 1-D, 2-D and batched operands, with NumPy's rules.

    Backward never forms the Jacobian (for a (N, D) @ (D, M) product it would have
    N*M x N*D entries); it uses the two products that give the same result:
    dL/da = g @ b^T and dL/db = a^T @ g.
    """

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
