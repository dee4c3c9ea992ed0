"""Functions of ``chainrule.nn``: layers, the seven activations of the lecture, losses
and regularization penalties, with PyTorch's names (``dim`` where PyTorch says dim).

Inputs are Tensors or NumPy arrays; targets may be either.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..engine import Function
from ..errors import ArgumentError, ChainruleError, ShapeError
from ..tensor import Tensor, as_generator, data_of
from .activation_ops import ELU, LeakyReLU, NormalCDF
from .loss_ops import BCEWithLogits, CrossEntropy, MultiClassHinge, check_reduction, class_targets


class Linear(Function):
    """y = x W^T + b for x of shape (*, in_features), W (out_features, in_features).

    Backward, without forming any Jacobian: dL/dx = g W, dL/dW = g^T x, dL/db = sum of g
    over the batch.
    """

    symbol = "linear"

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
        if x.ndim != 2:  # fold batch axes together: the weight sees every row alike
            x = x.reshape(-1, x.shape[-1])
        g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
        gx = (g @ weight) if needs[0] else None
        gw = (g2.T @ x) if needs[1] else None
        gb = g2.sum(axis=0) if len(needs) > 2 and needs[2] else None
        return (gx, gw, gb) if len(needs) > 2 else (gx, gw)


def linear(x, weight, bias=None):
    """x W^T + b. Shapes: x (*, in), weight (out, in), bias (out,) -> (*, out)."""
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


# ----- activations ------------------------------------------------------------------------
def relu(x):
    """max(0, x). Cheap and does not saturate for x > 0; units stuck at x < 0 are 'dead'."""
    return ops.relu(x)


def leaky_relu(x, negative_slope=0.01):
    """max(slope x, x): lets a small gradient through for x < 0 (the lecture uses 0.1)."""
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def elu(x, alpha=1.0):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return ELU.apply(x, alpha=alpha)


_GELU_CUBIC_RANGE = 10.0  # tanh(0.798 (10 + 0.0447 * 10^3)) is 1 even in float64


def gelu(x, approximate="none"):
    """x Phi(x) with Phi the normal CDF; ``approximate="tanh"`` uses PyTorch's tanh form."""
    if approximate == "tanh":
        # The cubic term only matters where tanh is not yet saturated; clipping it keeps
        # x^3 from overflowing, which would make the gradient inf * 0 = NaN for huge |x|.
        cubed = ops.clip(x, -_GELU_CUBIC_RANGE, _GELU_CUBIC_RANGE)
        inner = 0.7978845608028654 * (x + 0.044715 * cubed * cubed * cubed)
        return 0.5 * x * (1 + ops.tanh(inner))
    if approximate != "none":
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return x * NormalCDF.apply(x)


def silu(x):
    """x sigma(x), also called swish."""
    return x * ops.sigmoid(x)


def sigmoid(x):
    """1 / (1 + e^-x). Saturates at both ends, where its gradient vanishes."""
    return ops.sigmoid(x)


def tanh(x):
    """Zero-centred, but saturates like the sigmoid."""
    return ops.tanh(x)


def softmax(x, dim=-1):
    return ops.softmax(x, axis=dim)


def log_softmax(x, dim=-1):
    return ops.log_softmax(x, axis=dim)


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p)
    ("inverted" dropout, so evaluation needs no rescaling). Identity when not training."""
    if not 0 <= p <= 1:
        raise ArgumentError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    keep = as_generator(generator).random(data.shape) >= p
    return x * (keep * np.asarray(1 / (1 - p), dtype=data.dtype))


# ----- losses -----------------------------------------------------------------------------
def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy between scores (N, C) and integer class labels (N,).

    L_i = -log(e^{s_{y_i}} / sum_j e^{s_j}); with small random weights the initial mean
    loss is about ln(C).
    """
    check_reduction(reduction, "cross_entropy")
    target = class_targets(np.shape(data_of(logits)), target, "cross_entropy")
    return CrossEntropy.apply(logits, target=target, reduction=reduction)


def hinge_loss(scores, target, margin=1.0, reduction="mean"):
    """The multiclass SVM loss of the lecture on scores (N, C) and labels (N,):
    L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin), averaged over the batch.

    With small random weights the initial loss is about C - 1. PyTorch's
    ``multi_margin_loss`` computes the same sum divided by the number of classes C.
    """
    check_reduction(reduction, "hinge_loss")
    target = class_targets(np.shape(data_of(scores)), target, "hinge_loss")
    return MultiClassHinge.apply(scores, target=target, margin=margin, reduction=reduction)


def mse_loss(input, target, reduction="mean"):
    """Squared error (input - target)^2, averaged (or summed) over every element."""
    check_reduction(reduction, "mse_loss")
    if np.shape(data_of(input)) != np.shape(data_of(target)):
        raise ShapeError(f"mse_loss: input {np.shape(data_of(input))} and target "
                         f"{np.shape(data_of(target))} must have the same shape")
    diff = input - target
    squared = diff * diff
    return squared if reduction == "none" else (
        squared.mean() if reduction == "mean" else squared.sum())


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed from
    the logits so it never takes the log of 0."""
    check_reduction(reduction, "binary_cross_entropy_with_logits")
    if np.shape(data_of(logits)) != np.shape(data_of(target)):
        raise ShapeError(f"binary_cross_entropy_with_logits: logits {np.shape(data_of(logits))} "
                         f"and target {np.shape(data_of(target))} must have the same shape")
    if not isinstance(target, Tensor):
        target = np.asarray(target, dtype=data_of(logits).dtype)
    return BCEWithLogits.apply(logits, target, reduction=reduction)


# ----- regularization ---------------------------------------------------------------------
def _weights(module, include_bias):
    params = [p for name, p in module.named_parameters()
              if include_bias or not name.rsplit(".", 1)[-1].startswith("bias")]
    if not params:
        raise ChainruleError("penalty: the module has no weights to regularize")
    return params


def l2_penalty(module, lam, include_bias=False):
    """lam * R(W) with R(W) = sum of squared weights: the lecture's lambda R(W) term.

    Biases are left out unless ``include_bias``. (An optimizer's ``weight_decay=wd`` adds
    wd * W to the gradient, which equals this penalty with lam = wd / 2.)
    """
    return lam * sum((p * p).sum() for p in _weights(module, include_bias))


def l1_penalty(module, lam, include_bias=False):
    """lam * sum of |W| over the weights (biases left out unless ``include_bias``)."""
    return lam * sum(ops.abs(p).sum() for p in _weights(module, include_bias))
