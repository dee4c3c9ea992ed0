"""Optimizers that update parameters from their gradients, and learning-rate schedules.

The names, defaults and numerics follow ``torch.optim``::

    >>> import chainrule as cr
    >>> from chainrule import optim
    >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> opt.step()          # w <- w - 0.1 * dloss/dw, in place
    >>> w.data
    array([ 0.8, -1.6], dtype=float32)
    >>> opt.zero_grad()     # w.grad is None again

A parameter is any Tensor (``chainrule.nn.Parameter`` included); only those whose
``.grad`` is set are updated by ``step()``. A new optimizer subclasses ``Optimizer`` and
writes its update rule with the in-place operations of ``optim.inplace`` (see ``Adagrad``).
"""

from . import inplace, lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, OptimizerError
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Optimizer", "OptimizerError",
           "inplace", "lr_scheduler"]
