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
``.grad`` is set are updated by ``step()``.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer, OptimizerError
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "Optimizer", "OptimizerError", "lr_scheduler"]
