"""Every differentiable operation, as a function with NumPy's name and semantics.

Each operation is one ``Function`` class (forward beside backward, its metadata declared)
with its public function right below it, in the module of its kind: ``elementwise``,
``reduction``, ``shape``, ``linalg``, ``activation`` and ``loss``. The functions accept
Tensors, NumPy arrays and Python numbers, broadcast as NumPy does and return Tensors.
``engine.OPERATIONS`` lists every ``Function`` by its public name.

This module also builds, from one table, the functions a backward rule may call through
``ctx.xp``: on plain arrays in an ordinary backward pass, recorded on Tensors when the
backward pass is itself differentiated (``create_graph=True``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import engine
from ..tensor import Tensor
from . import methods
from .activation import (
    ELU,
    LeakyReLU,
    NormalCDF,
    Softplus,
    elu,
    gelu,
    leaky_relu,
    normal_cdf,
    silu,
    softplus,
)
from .elementwise import (
    Abs,
    Add,
    AsType,
    Clip,
    Divide,
    Exp,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Multiply,
    Negative,
    Power,
    ReLU,
    Sigmoid,
    Sqrt,
    Subtract,
    Tanh,
    Where,
    abs,
    add,
    astype,
    clip,
    divide,
    exp,
    log,
    log1p,
    maximum,
    minimum,
    multiply,
    negative,
    power,
    relu,
    sigmoid,
    sqrt,
    stable_sigmoid,
    subtract,
    tanh,
    where,
)
from .linalg import Linear, MatMul, linear, matmul
from .loss import (
    BCEWithLogits,
    CrossEntropy,
    MultiClassHinge,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    mse_loss,
)
from .reduction import (
    LogSoftmax,
    LogSumExp,
    Max,
    Mean,
    Min,
    Softmax,
    Sum,
    Var,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    stable_softmax,
    std,
    sum,
    var,
)
from .shape import (
    BroadcastTo,
    Concatenate,
    GetItem,
    IndexAdd,
    Reshape,
    Stack,
    Transpose,
    broadcast_array,
    broadcast_to,
    concatenate,
    expand,
    getitem,
    index_add_array,
    permute,
    reshape,
    stack,
    swapaxes,
    transpose,
)


def _index_add_recorded(shape, index, values, dtype=None):
    return IndexAdd.apply(values, shape=shape, index=index, dtype=dtype)


# name: (on arrays, recorded on Tensors). A backward rule calls ``ctx.xp.<name>`` and
# never needs to know which of the two it has; a rule that needs a function not listed
# here adds it to this table (both columns), so double backward keeps working.
RULE_FUNCTIONS = {
    "exp": (np.exp, exp),
    "log": (np.log, log),
    "log1p": (np.log1p, log1p),
    "sqrt": (np.sqrt, sqrt),
    "tanh": (np.tanh, tanh),
    "sigmoid": (stable_sigmoid, sigmoid),
    "softmax": (stable_softmax, softmax),
    "where": (np.where, where),
    "maximum": (np.maximum, maximum),
    "broadcast_to": (broadcast_array, broadcast_to),
    "index_add": (index_add_array, _index_add_recorded),
}

engine.ARRAY_MATH = SimpleNamespace(records=False, **{k: v[0] for k, v in RULE_FUNCTIONS.items()})
engine.TENSOR_MATH = SimpleNamespace(records=True, **{k: v[1] for k, v in RULE_FUNCTIONS.items()})
engine.Context.xp = engine.ARRAY_MATH  # what a node's rule calls unless it runs on Tensors

methods.install(Tensor)
