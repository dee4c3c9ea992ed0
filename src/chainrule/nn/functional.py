"""Functions of ``chainrule.nn``: layers, the seven activations of the lecture, losses
and regularization penalties, with PyTorch's names (``dim`` where PyTorch says dim).

The differentiable operations themselves live in ``chainrule.ops`` (forward beside
backward); this namespace gathers the ones networks use, as PyTorch's ``nn.functional``.
Inputs are Tensors or NumPy arrays; targets may be either.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ArgumentError, ChainruleError
from ..ops import (  # noqa: F401  (re-exported: nn.functional is where networks look)
    binary_cross_entropy_with_logits,
    cross_entropy,
    elu,
    gelu,
    hinge_loss,
    leaky_relu,
    linear,
    mse_loss,
    relu,
    sigmoid,
    silu,
    softplus,
    tanh,
)
from ..tensor import Tensor, as_generator
from ..tracing import tracing


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
    mask = dropout_mask(generator, data.shape, p, data.dtype)
    if tracing.recorder is not None:  # a compiled step draws a new mask at every replay
        tracing.recorder.on_random(mask, dropout_mask, (generator, data.shape, p, data.dtype))
    return x * mask


def dropout_mask(generator, shape, p, dtype):
    """0 with probability ``p``, else 1 / (1 - p): one draw of ``generator.random(shape)``
    (``generator``: a seed, a Generator or None for the default generator)."""
    keep = as_generator(generator).random(shape) >= p
    return keep * np.asarray(1 / (1 - p), dtype=dtype)


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
