"""The activation functions of the lecture that are not engine primitives, each as a
forward beside its backward. ReLU, sigmoid and tanh are primitives of ``chainrule.ops``;
SiLU is composed from them.

Every function here is finite in value and gradient for any finite input: exponentials
are only ever taken of non-positive numbers.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import Function

try:  # SciPy's erf is faster; math.erf element by element gives the same values
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on what is installed
    _erf = np.frompyfunc(math.erf, 1, 1)


class LeakyReLU(Function):
    """x for x > 0, else slope * x: a small gradient flows for negative inputs too."""

    symbol = "leaky_relu"

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        ctx.local = np.where(x > 0, 1.0, negative_slope).astype(x.dtype)
        return x * ctx.local

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.local


class ELU(Function):
    """x for x > 0, else alpha (e^x - 1): smooth and closer to zero-mean than ReLU."""

    symbol = "elu"

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        ctx.alpha, ctx.positive = alpha, x > 0
        return np.where(ctx.positive, x, alpha * np.expm1(np.minimum(x, 0)))

    @staticmethod
    def backward(ctx, upstream):
        (x,) = ctx.inputs
        # local gradient: 1 for x > 0, alpha e^x (= out + alpha) otherwise
        below = ctx.alpha * ctx.xp.exp(ctx.xp.where(ctx.positive, 0, x))
        return ctx.xp.where(ctx.positive, upstream, upstream * below)


class NormalCDF(Function):
    """Phi(x), the standard normal CDF 0.5 (1 + erf(x / sqrt 2)); its local gradient is
    the normal density e^(-x^2/2) / sqrt(2 pi). GELU is x * Phi(x)."""

    symbol = "Φ"

    @staticmethod
    def forward(ctx, x):
        dtype = x.dtype if x.dtype.kind == "f" else np.float32  # float16 stays float16
        return (0.5 * (1 + _erf(x * _SQRT_HALF))).astype(dtype)

    @staticmethod
    def backward(ctx, upstream):
        (x,) = ctx.inputs
        return upstream * (ctx.xp.exp(-0.5 * x * x) * _INV_SQRT_2PI)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
