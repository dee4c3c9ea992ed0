"""Tensor's operators and array methods, each the public function of one operation.

``x + y`` is ``add(x, y)``, ``x.sum(axis)`` is ``sum(x, axis)``: ``install`` gives
``Tensor`` these methods when ``chainrule.ops`` is imported, so that ``tensor.py``, below
the operations in the package's layers, needs no import of them. A new operation that
should also be a method adds a line here.
"""

from __future__ import annotations

import numpy as np

from .elementwise import (
    abs,
    add,
    astype,
    clip,
    divide,
    exp,
    log,
    multiply,
    negative,
    power,
    relu,
    sigmoid,
    sqrt,
    subtract,
    tanh,
)
from .linalg import matmul
from .reduction import log_softmax, logsumexp, max, mean, min, softmax, std, sum, var
from .shape import broadcast_to, expand, getitem, reshape, swapaxes, transpose


def _reflected(op):
    """``other <op> tensor``: Python calls the tensor's reflected method."""
    return lambda self, other: op(other, self)


def _one_sequence(args) -> bool:
    """Whether varargs hold a single tuple/list (``f((1, 0))``) rather than ints."""
    return len(args) == 1 and not isinstance(args[0], int | np.integer)


def _reshape(self, *shape):
    return reshape(self, shape[0] if len(shape) == 1 else shape)


def _transpose(self, *axes):
    """NumPy's transpose: reverse the axes, or permute them as given."""
    return transpose(self, axes[0] if _one_sequence(axes) else (axes or None))


def _permute(self, *dims):
    """PyTorch's name for ``transpose(dims)``."""
    return transpose(self, dims[0] if _one_sequence(dims) else dims)


def _expand(self, *sizes):
    """PyTorch's expand: broadcast to ``sizes``, where -1 keeps a dimension as it is."""
    return expand(self, *sizes)


def _clip(self, min=None, max=None):
    return clip(self, min, max)


METHODS = {
    # operators
    "__add__": add, "__radd__": _reflected(add),
    "__sub__": subtract, "__rsub__": _reflected(subtract),
    "__mul__": multiply, "__rmul__": _reflected(multiply),
    "__truediv__": divide, "__rtruediv__": _reflected(divide),
    "__pow__": power, "__rpow__": _reflected(power),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": negative, "__abs__": abs, "__getitem__": getitem,
    # methods with NumPy's (or, where NumPy has none, PyTorch's) names
    "matmul": matmul, "dot": matmul,
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "tanh": tanh, "sigmoid": sigmoid,
    "relu": relu, "clip": _clip,
    "sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std,
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
    "reshape": _reshape, "flatten": lambda self: reshape(self, (-1,)),
    "transpose": _transpose, "permute": _permute, "swapaxes": swapaxes,
    "broadcast_to": broadcast_to, "expand": _expand,
    "astype": astype, "float": lambda self: astype(self, np.float32),
    "double": lambda self: astype(self, np.float64),
    "T": property(lambda self: transpose(self)),
}


def install(cls):
    """Give ``cls`` (Tensor) every operator and method above."""
    for name, method in METHODS.items():
        setattr(cls, name, method)
