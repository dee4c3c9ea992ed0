"""Fused loss functions: one graph node each, forward beside backward.

Fusing softmax with the negative log-likelihood (and the sigmoid with binary cross-
entropy) is both faster and numerically stable: the gradient is simply
(probabilities - targets), with no log of a number that underflowed to zero.
"""

from __future__ import annotations

import numpy as np

from ..engine import Function
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor, data_of

REDUCTIONS = ("mean", "sum", "none")


def class_targets(logits_shape, target, op: str) -> np.ndarray:
    """Integer class labels of shape (N,) checked against logits of shape (N, C)."""
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if len(logits_shape) != 2:
        raise ShapeError(f"{op}: scores must have shape (N, C), got {tuple(logits_shape)}")
    n, c = logits_shape
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: targets must be integer class labels, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ShapeError(f"{op}: scores {tuple(logits_shape)} need targets of shape ({n},), "
                         f"got {target.shape}")
    # one reduction over the labels seen as unsigned: negatives wrap to huge values
    if n and np.maximum.reduce(target.view(np.uint64 if target.itemsize == 8 else
                                           np.dtype(f"u{target.itemsize}"))) >= c:
        bad = target[target.astype(np.uint64, copy=False) >= c][0]
        raise ShapeError(f"{op}: target labels must lie in [0, {c}), got {bad}")
    return target


def check_reduction(reduction: str, op: str):
    if reduction not in REDUCTIONS:
        raise ArgumentError(f"{op}: reduction must be one of {', '.join(REDUCTIONS)}, "
                         f"got {reduction!r}")


def _reduce(losses, reduction):
    if reduction == "mean":
        if losses.size == 0:  # the mean of no losses: NaN as in PyTorch, without a warning
            return np.full((), np.nan, dtype=losses.dtype)
        if losses.dtype.kind == "f" and losses.itemsize >= 4:
            # what ndarray.mean computes, without its Python-level wrapper (microseconds
            # on a batch's losses)
            return np.asarray(np.add.reduce(losses, axis=None) / losses.size)
        return np.asarray(losses.mean())
    if reduction == "sum":
        return np.asarray(losses.sum())
    return losses


def _spread(upstream, n, reduction):
    """The upstream gradient of the reduced loss as one weight per example, shape (N, 1)."""
    if reduction == "none":
        return upstream.reshape(n, 1)
    return upstream / (n or 1) if reduction == "mean" else upstream  # n = 0: no rows to weigh


def row_max(scores):
    """The largest score of each row of (N, C) scores, as (N, 1).

    Along a short last axis ``np.maximum.reduce`` spends most of its time setting up a
    tiny reduction per row: for a few classes, C - 1 passes of ``np.maximum`` over the
    columns take half the time (2.7 -> 1.4 us at 64 x 3). A maximum is exact, so both
    give the same numbers (NaN included)."""
    classes = scores.shape[1]
    if not 0 < classes <= 4:
        return np.maximum.reduce(scores, axis=1, keepdims=True)
    top = scores[:, 0].copy()
    for j in range(1, classes):
        np.maximum(top, scores[:, j], out=top)
    return top[:, None]


class CrossEntropy(Function):
    """Softmax cross-entropy L_i = -log softmax(s)_{y_i} on scores s of shape (N, C).

    Local gradient with respect to the scores: softmax(s) - onehot(y).
    """

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, target=None, reduction="mean"):
        rows = np.arange(logits.shape[0])
        # ufunc reductions: ndarray.max and .sum add a Python-level wrapper each
        shifted = logits - row_max(logits)  # exp: no overflow
        probs = np.exp(shifted)
        norm = np.add.reduce(probs, axis=1)
        probs /= norm[:, None]
        ctx.target, ctx.rows, ctx.reduction, ctx.probs = target, rows, reduction, probs
        return _reduce(np.log(norm) - shifted[rows, target], reduction)

    @staticmethod
    def backward(ctx, upstream):
        (logits,) = ctx.inputs
        weight = _spread(upstream, logits.shape[0], ctx.reduction)
        if ctx.xp.records:  # the saved probabilities are constants: recompute them recorded
            onehot = np.zeros(logits.shape, dtype=logits.dtype)
            onehot[ctx.rows, ctx.target] = 1
            return (ctx.xp.softmax(logits, axis=1) - onehot) * weight
        grad = ctx.probs * weight  # a new array: the saved probabilities stay as they are
        grad[ctx.rows, ctx.target] -= weight if np.ndim(weight) == 0 else weight[:, 0]
        return grad


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy between scores (N, C) and integer class labels (N,).

    L_i = -log(e^{s_{y_i}} / sum_j e^{s_j}); with small random weights the initial mean
    loss is about ln(C).
    """
    check_reduction(reduction, "cross_entropy")
    target = class_targets(np.shape(data_of(logits)), target, "cross_entropy")
    return CrossEntropy.apply(logits, target=target, reduction=reduction)


class MultiClassHinge(Function):
    """The multiclass SVM loss L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin).

    Each violated margin sends +1 to its class's score and -1 to the correct class's.
    """

    name = "hinge_loss"
    symbol = "hinge"

    @staticmethod
    def forward(ctx, scores, target=None, margin=1.0, reduction="mean"):
        n = scores.shape[0]
        rows = np.arange(n)
        margins = scores - scores[rows, target][:, None] + margin
        margins[rows, target] = 0
        violated = margins > 0
        local = violated.astype(scores.dtype)
        local[rows, target] = -violated.sum(axis=1)
        # NaN in, NaN out (as in cross_entropy): a NaN margin is neither kept nor dropped
        unknown = np.isnan(margins)
        local[unknown.any(axis=1)] = np.nan
        ctx.local, ctx.reduction = local, reduction
        return _reduce(np.where(violated | unknown, margins, 0).sum(axis=1), reduction)

    @staticmethod
    def backward(ctx, upstream):
        return _spread(upstream, ctx.local.shape[0], ctx.reduction) * ctx.local


def hinge_loss(scores, target, margin=1.0, reduction="mean"):
    """The multiclass SVM loss of the lecture on scores (N, C) and labels (N,):
    L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin), averaged over the batch.

    With small random weights the initial loss is about C - 1. PyTorch's
    ``multi_margin_loss`` computes the same sum divided by the number of classes C.
    """
    check_reduction(reduction, "hinge_loss")
    target = class_targets(np.shape(data_of(scores)), target, "hinge_loss")
    return MultiClassHinge.apply(scores, target=target, margin=margin, reduction=reduction)


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x with targets t in [0, 1], computed stably as
    max(x, 0) - x t + log(1 + e^-|x|); local gradients sigmoid(x) - t and -x."""

    name = "binary_cross_entropy_with_logits"
    symbol = "bce_logits"

    @staticmethod
    def forward(ctx, x, t, reduction="mean"):
        ctx.reduction = reduction
        losses = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        return _reduce(losses, reduction)

    @staticmethod
    def backward(ctx, upstream):
        x, t = ctx.inputs
        # (an empty input has an empty gradient: nothing to divide among)
        scale = upstream / (np.size(data_of(x)) or 1) if ctx.reduction == "mean" else upstream
        need_x, need_t = ctx.needs_input_grad
        return (scale * (ctx.xp.sigmoid(x) - t) if need_x else None,
                -scale * x if need_t else None)


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


def mse_loss(input, target, reduction="mean"):
    """Squared error (input - target)^2, averaged (or summed) over every element; composed
    of subtract, multiply and a reduction, so it needs no backward of its own."""
    check_reduction(reduction, "mse_loss")
    if np.shape(data_of(input)) != np.shape(data_of(target)):
        raise ShapeError(f"mse_loss: input {np.shape(data_of(input))} and target "
                         f"{np.shape(data_of(target))} must have the same shape")
    diff = input - target
    squared = diff * diff
    return squared if reduction == "none" else (
        squared.mean() if reduction == "mean" else squared.sum())
