"""How each operation is called in chainrule and in PyTorch, in float64.

``CALLS`` maps the name of a step to (chainrule's call as a reproducer prints it,
chainrule's function, PyTorch's function); both functions take the step's operands and
then its parameters as keywords. The semantic differences are mapped on PyTorch's side:
``ddof`` is ``correction``, ``max`` over axes is ``amax``, NumPy's ``axis=()`` (reduce
nothing) is a reduction over a new axis of length 1, the multiclass hinge loss is
PyTorch's ``multi_margin_loss`` times C (written out so that its second derivative
exists), a clip whose bounds broadcast the input to a larger shape clamps the input
broadcast first.
"""

from __future__ import annotations

import numpy as np
from torch_reference import torch

import chainrule as cr
from chainrule.ops.shape import IndexAdd


def _t(a):
    return torch.as_tensor(np.asarray(a))


def _torch_axes(x, axis):
    """``axis`` as PyTorch's ``dim``: a tuple of axes, or None to mean NumPy's axis=()."""
    ndim = x.dim()
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = tuple(sorted({a % ndim for a in axes})) if ndim else ()
    return axes or None


def _torch_reduce(fn, x, axis, keepdims, **kw):
    axes = _torch_axes(x, axis)
    if axes is None:  # NumPy reduces nothing; reduce a new axis of length 1 instead
        return fn(x.unsqueeze(-1), dim=-1, keepdim=False, **kw)
    return fn(x, dim=axes, keepdim=keepdims, **kw)


def _torch_clip(x, min=None, max=None):  # noqa: A002 - np.clip's names
    low, high = min, max
    bounds = [b for b in (low, high) if b is not None]
    if not bounds:  # torch.clamp needs a bound; np.clip (and chainrule) return the input
        return x * 1
    shape = np.broadcast_shapes(tuple(x.shape), *(np.shape(b) for b in bounds))
    as_t = (lambda b: None if b is None else _t(b)) if any(
        isinstance(b, np.ndarray) for b in bounds) else (lambda b: b)
    return torch.clamp(x.expand(shape), as_t(low), as_t(high))


def _torch_getitem(x, index):
    if isinstance(index, slice) and (index.step or 1) < 0:  # NumPy's reversed slices
        return x.flip(0)[::-index.step]
    return x[_torch_index(index)]


def _torch_activation(x, name):
    nn = torch.nn
    modules = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
               "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    return modules[name]()(x)


def _activation(x, name):
    return cr.nn.ACTIVATIONS[name]()(x)  # the module, made with its defaults


def _torch_index(index):
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    return _t(index) if isinstance(index, np.ndarray) else index


def _torch_hinge(scores, target, margin, reduction):
    # multi_margin_loss * C, written out: sum_{j != y} max(0, s_j - s_y + margin)
    t = _t(target)
    correct = scores.gather(1, t[:, None])
    others = 1 - torch.nn.functional.one_hot(t, scores.shape[1]).to(scores.dtype)
    losses = (torch.clamp(scores - correct + margin, min=0) * others).sum(dim=1)
    return _torch_reduction(losses, reduction)


def _torch_reduction(losses, reduction):
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


def _torch_index_add(values, shape, index):
    return torch.zeros(shape, dtype=values.dtype).index_put(
        (_t(index),), values, accumulate=True)


def _torch_scalar(op):
    def run(x, scalar, scalar_first):
        return op(scalar, x) if scalar_first else op(x, scalar)
    return run


def _cr_scalar(op):
    def run(x, scalar, scalar_first):
        return op(scalar, x) if scalar_first else op(x, scalar)
    return run


def _F():
    return torch.nn.functional


# name: (chainrule's call as the reproducer prints it, chainrule's function, PyTorch's)
CALLS = {
    "negative": ("cr.negative", cr.negative, lambda x: -x),
    "exp": ("cr.exp", cr.exp, lambda x: torch.exp(x)),
    "log": ("cr.log", cr.log, lambda x: torch.log(x)),
    "log1p": ("cr.log1p", cr.log1p, lambda x: torch.log1p(x)),
    "sqrt": ("cr.sqrt", cr.sqrt, lambda x: torch.sqrt(x)),
    "abs": ("cr.abs", cr.abs, lambda x: torch.abs(x)),
    "tanh": ("cr.nn.functional.tanh", cr.nn.functional.tanh, lambda x: torch.tanh(x)),
    "sigmoid": ("cr.nn.functional.sigmoid", cr.nn.functional.sigmoid,
                lambda x: torch.sigmoid(x)),
    "relu": ("cr.nn.functional.relu", cr.nn.functional.relu, lambda x: torch.relu(x)),
    "leaky_relu": ("cr.nn.functional.leaky_relu", cr.nn.functional.leaky_relu,
                   lambda x, negative_slope: _F().leaky_relu(x, negative_slope)),
    "elu": ("cr.nn.functional.elu", cr.nn.functional.elu,
            lambda x, alpha: _F().elu(x, alpha)),
    # PyTorch's softplus is x itself above beta * x > threshold (20 by default), which
    # differs from the exact value by e^-20 ~ 2e-9 in the second derivative; at 40 it is
    # far below float64's resolution (see "Differences from PyTorch" in the README)
    "softplus": ("cr.nn.functional.softplus", cr.nn.functional.softplus,
                 lambda x, beta: _F().softplus(x, beta, threshold=40.0)),
    "normal_cdf": ("cr.ops.normal_cdf", cr.ops.normal_cdf, lambda x: torch.special.ndtr(x)),
    "gelu": ("cr.nn.functional.gelu", cr.nn.functional.gelu,
             lambda x, approximate: _F().gelu(x, approximate=approximate)),
    "silu": ("cr.nn.functional.silu", cr.nn.functional.silu, lambda x: _F().silu(x)),
    "astype": ("cr.astype", cr.astype, lambda x, dtype: x.to(torch.float64)),
    "add": ("cr.add", cr.add, lambda a, b: a + b),
    "subtract": ("cr.subtract", cr.subtract, lambda a, b: a - b),
    "multiply": ("cr.multiply", cr.multiply, lambda a, b: a * b),
    "divide": ("cr.divide", cr.divide, lambda a, b: a / b),
    "power": ("cr.power", cr.power, lambda a, b: torch.pow(a, b)),
    "maximum": ("cr.maximum", cr.maximum, lambda a, b: torch.maximum(a, b)),
    "minimum": ("cr.minimum", cr.minimum, lambda a, b: torch.minimum(a, b)),
    "scalar_add": ("scalar(cr.add)", _cr_scalar(cr.add), _torch_scalar(lambda a, b: a + b)),
    "scalar_subtract": ("scalar(cr.subtract)", _cr_scalar(cr.subtract),
                        _torch_scalar(lambda a, b: a - b)),
    "scalar_multiply": ("scalar(cr.multiply)", _cr_scalar(cr.multiply),
                        _torch_scalar(lambda a, b: a * b)),
    "scalar_divide": ("scalar(cr.divide)", _cr_scalar(cr.divide),
                      _torch_scalar(lambda a, b: a / b)),
    "scalar_power": ("scalar(cr.power)", _cr_scalar(cr.power),
                     _torch_scalar(lambda a, b: a ** b)),
    "where": ("where", lambda a, b, condition: cr.where(condition, a, b),
              lambda a, b, condition: torch.where(_t(condition), a, b)),
    "clip": ("cr.clip", cr.clip, _torch_clip),
    "sum": ("cr.sum", cr.sum, lambda x, axis, keepdims: _torch_reduce(
        torch.sum, x, axis, keepdims)),
    "mean": ("cr.mean", cr.mean, lambda x, axis, keepdims: _torch_reduce(
        torch.mean, x, axis, keepdims)),
    "max": ("cr.max", cr.max, lambda x, axis, keepdims: _torch_reduce(
        torch.amax, x, axis, keepdims)),
    "min": ("cr.min", cr.min, lambda x, axis, keepdims: _torch_reduce(
        torch.amin, x, axis, keepdims)),
    "var": ("cr.var", cr.var, lambda x, axis, ddof, keepdims: _torch_reduce(
        torch.var, x, axis, keepdims, correction=ddof)),
    "std": ("cr.std", cr.std, lambda x, axis, ddof, keepdims: _torch_reduce(
        torch.std, x, axis, keepdims, correction=ddof)),
    "logsumexp": ("cr.logsumexp", cr.logsumexp, lambda x, axis, keepdims: _torch_reduce(
        torch.logsumexp, x, axis, keepdims)),
    "softmax": ("cr.softmax", cr.softmax, lambda x, axis: torch.softmax(x, dim=axis)),
    "log_softmax": ("cr.log_softmax", cr.log_softmax,
                    lambda x, axis: torch.log_softmax(x, dim=axis)),
    "matmul": ("cr.matmul", cr.matmul, lambda a, b: torch.matmul(a, b)),
    "linear": ("cr.nn.functional.linear", cr.nn.functional.linear,
               lambda *a: _F().linear(*a)),
    "cross_entropy": ("cr.nn.functional.cross_entropy", cr.nn.functional.cross_entropy,
                      lambda x, target, reduction: _F().cross_entropy(
                          x, _t(target), reduction=reduction)),
    "hinge_loss": ("cr.nn.functional.hinge_loss", cr.nn.functional.hinge_loss,
                   _torch_hinge),
    "binary_cross_entropy_with_logits": (
        "cr.nn.functional.binary_cross_entropy_with_logits",
        cr.nn.functional.binary_cross_entropy_with_logits,
        lambda x, t, reduction: _F().binary_cross_entropy_with_logits(
            x, t, reduction=reduction)),
    "bce_constant_target": (
        "cr.nn.functional.binary_cross_entropy_with_logits",
        cr.nn.functional.binary_cross_entropy_with_logits,
        lambda x, target, reduction: _F().binary_cross_entropy_with_logits(
            x, _t(target), reduction=reduction)),
    "mse_loss": ("cr.nn.functional.mse_loss", cr.nn.functional.mse_loss,
                 lambda a, b, reduction: _F().mse_loss(a, b, reduction=reduction)),
    "reshape": ("cr.reshape", cr.reshape, lambda x, shape: torch.reshape(x, shape)),
    "transpose": ("cr.transpose", cr.transpose, lambda x, axes: torch.permute(
        x, tuple(reversed(range(x.dim()))) if axes is None else axes)),
    "broadcast_to": ("cr.broadcast_to", cr.broadcast_to,
                     lambda x, shape: torch.broadcast_to(x, shape)),
    "getitem": ("cr.ops.getitem", cr.ops.getitem, _torch_getitem),
    "activation": ("activation", _activation, _torch_activation),
    "expand": ("expand", lambda x, sizes: cr.expand(x, *sizes),
               lambda x, sizes: x.expand(*sizes)),
    "swapaxes": ("cr.swapaxes", cr.swapaxes, lambda x, axis1, axis2: torch.swapaxes(
        x, axis1, axis2)),
    "index_add": ("IndexAdd.apply", IndexAdd.apply, _torch_index_add),
    "concatenate": ("join(cr.concatenate)", lambda *xs, axis: cr.concatenate(xs, axis=axis),
                    lambda *xs, axis: torch.cat(xs, dim=axis)),
    "stack": ("join(cr.stack)", lambda *xs, axis: cr.stack(xs, axis=axis),
              lambda *xs, axis: torch.stack(xs, dim=axis)),
}

# What each entry of CALLS exercises among engine.OPERATIONS (beyond its own name).
COVERS = {"std": {"var", "sqrt"}, "gelu": {"normal_cdf", "tanh", "multiply"},
          "silu": {"sigmoid", "multiply"}, "mse_loss": {"subtract", "multiply", "mean", "sum"},
          "bce_constant_target": {"binary_cross_entropy_with_logits"},
          "expand": {"broadcast_to"}, "swapaxes": {"transpose"},
          **{f"scalar_{op}": {op} for op in ("add", "subtract", "multiply", "divide", "power")}}
