"""The activation functions of the lecture beyond ReLU, sigmoid and tanh (which live in
``elementwise``), each as a forward beside its backward. GELU and SiLU are composed from
other operations.

Every function here is finite in value and gradient for any finite input: exponentials
are only ever taken of non-positive numbers.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..engine import Function
from ..errors import ArgumentError
from .elementwise import clip, sigmoid, tanh


@functools.cache
def _erf_function():
    """SciPy's erf, which is faster; math.erf element by element gives the same values.
    Looked up on first use: importing SciPy takes longer than importing chainrule."""
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - depends on what is installed
        return np.frompyfunc(math.erf, 1, 1)
    return erf


def _erf(x):
    return _erf_function()(x)


class LeakyReLU(Function):
    """x for x > 0, else slope * x: a small gradient flows for negative inputs too."""

    name = "leaky_relu"
    elementwise = True

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        ctx.local = np.where(x > 0, 1.0, negative_slope).astype(x.dtype)
        return x * ctx.local

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.local


def leaky_relu(x, negative_slope=0.01):
    """max(slope x, x): lets a small gradient through for x < 0 (the lecture uses 0.1)."""
    return LeakyReLU.apply(x, negative_slope=negative_slope)


class ELU(Function):
    """x for x > 0, else alpha (e^x - 1): smooth and closer to zero-mean than ReLU."""

    name = "elu"
    elementwise = True

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


def elu(x, alpha=1.0):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return ELU.apply(x, alpha=alpha)


class Softplus(Function):
    """log(1 + e^(beta x)) / beta: a smooth ReLU whose local gradient is sigmoid(beta x)."""

    name = "softplus"
    elementwise = True

    @staticmethod
    def forward(ctx, x, beta=1.0):
        ctx.beta = beta
        bx = beta * x
        # max(bx, 0) + log(1 + e^-|bx|) equals log(1 + e^bx) and never overflows
        return (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta

    @staticmethod
    def backward(ctx, upstream):
        (x,) = ctx.inputs
        return upstream * ctx.xp.sigmoid(ctx.beta * x)


def softplus(x, beta=1.0):
    """A smooth ReLU, log(1 + e^(beta x)) / beta, finite for any finite input."""
    return Softplus.apply(x, beta=beta)


class NormalCDF(Function):
    """Phi(x), the standard normal CDF 0.5 (1 + erf(x / sqrt 2)); its local gradient is
    the normal density e^(-x^2/2) / sqrt(2 pi). GELU is x * Phi(x)."""

    name = "normal_cdf"
    elementwise = True
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


def normal_cdf(x):
    """The standard normal CDF Phi(x)."""
    return NormalCDF.apply(x)


_GELU_CUBIC_RANGE = 10.0  # tanh(0.798 (10 + 0.0447 * 10^3)) is 1 even in float64


def gelu(x, approximate="none"):
    """x Phi(x) with Phi the normal CDF; ``approximate="tanh"`` uses PyTorch's tanh form."""
    if approximate == "tanh":
        # The cubic term only matters where tanh is not yet saturated; clipping it keeps
        # x^3 from overflowing, which would make the gradient inf * 0 = NaN for huge |x|.
        cubed = clip(x, -_GELU_CUBIC_RANGE, _GELU_CUBIC_RANGE)
        inner = 0.7978845608028654 * (x + 0.044715 * cubed * cubed * cubed)
        return 0.5 * x * (1 + tanh(inner))
    if approximate != "none":
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return x * NormalCDF.apply(x)


def silu(x):
    """x sigma(x), also called swish."""
    return x * sigmoid(x)
