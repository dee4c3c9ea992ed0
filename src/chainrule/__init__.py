"""chainrule: backpropagation you can see.

A NumPy automatic-differentiation engine over computational graphs, following CS231n
Lecture 4: each operation knows its local gradient, and ``backward()`` multiplies every
node's upstream gradient by it to get the downstream gradients.

    >>> import chainrule as cr
    >>> x = cr.tensor(-2.0, requires_grad=True)
    >>> y = cr.tensor(5.0, requires_grad=True)
    >>> z = cr.tensor(-4.0, requires_grad=True)
    >>> f = (x + y) * z
    >>> f.backward()
    >>> x.grad, y.grad, z.grad
    (array(-4., dtype=float32), array(-4., dtype=float32), array(3., dtype=float32))
"""

import importlib as _importlib
import typing as _typing

from .engine import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .errors import (
    ArgumentError,
    ChainruleError,
    CheckpointError,
    DataError,
    DatasetNotFoundError,
    DTypeError,
    GradcheckError,
    GraphError,
    OptimizerError,
    ShapeError,
    TrainingDiverged,
    UsageError,
)
from .ops import (
    abs,
    add,
    astype,
    broadcast_to,
    clip,
    concatenate,
    divide,
    exp,
    expand,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    permute,
    power,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    stack,
    std,
    subtract,
    sum,
    swapaxes,
    tanh,
    transpose,
    var,
    where,
)
from .tensor import (
    Tensor,
    arange,
    as_generator,
    bool_,
    eye,
    float16,
    float32,
    float64,
    full,
    int32,
    int64,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

# The rest is imported on first use (``cr.nn``, ``cr.compile``, ...): ``import chainrule``
# then costs the engine alone, which is what a worker process or the command line pays
# before it does anything.
_SUBMODULES = ("autograd", "data", "gradcheck", "nn", "optim", "plots", "viz")
_FROM = {"compile": "compiler", "Run": "run", "fit": "run", "load_run": "run",
         "load": "serialization", "save": "serialization", "draw_graph": "viz",
         "explain": "viz"}

if _typing.TYPE_CHECKING:  # the same names, for tools that read the code without running it
    from . import autograd, data, gradcheck, nn, optim, plots, viz
    from .compiler import compile
    from .run import Run, fit, load_run
    from .serialization import load, save
    from .viz import draw_graph, explain


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _FROM:
        value = getattr(_importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_FROM))
