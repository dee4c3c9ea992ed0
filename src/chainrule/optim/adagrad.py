"""Adagrad: divide each parameter's step by the root of its summed squared gradients."""

from __future__ import annotations

import numpy as np

from .inplace import addcdiv_, addcmul_, decayed_grad
from .optimizer import Optimizer, check_hyperparameter


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer), PyTorch's algorithm step for step.

    Each parameter gets its own rate: one that has seen large gradients moves less. For
    each parameter ``p`` with gradient ``g``, with the sum s starting at
    ``initial_accumulator_value``, at step t::

        g = g + weight_decay * p                  (if weight_decay != 0)
        lr_t = lr / (1 + (t - 1) * lr_decay)
        s = s + g**2                              (state "sum")
        p = p - lr_t * g / (sqrt(s) + eps)

    Unlike RMSprop's moving average, the sum only grows, so the steps shrink over
    training. As in PyTorch, every parameter's state (``"step"`` 0 and ``"sum"``) exists
    from the moment it joins the optimizer, and is in ``state_dict()`` before any step.

    Args:
        params: Tensors, or parameter-group dicts (see ``Optimizer``).
        lr: learning rate (default 0.01).
        lr_decay: the rate at step t is ``lr / (1 + (t - 1) * lr_decay)`` (default 0).
        weight_decay: L2 penalty, added to the gradient as ``weight_decay * p``.
        initial_accumulator_value: the starting value of every entry of the sum s
            (default 0).
        eps: added to the denominator so it is never zero (default 1e-10).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10):
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value}
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        check_hyperparameter("lr_decay", group["lr_decay"])
        check_hyperparameter("weight_decay", group["weight_decay"])
        check_hyperparameter("initial_accumulator_value", group["initial_accumulator_value"])
        check_hyperparameter("eps", group["eps"])

    def _init_state(self, state, param, group):
        state["step"] = 0.0
        state["sum"] = np.full_like(param, group["initial_accumulator_value"])

    def _update(self, param, grad, state, group, scratch):
        if not state:  # a state dict that lacked this parameter was loaded
            self._init_state(state, param, group)
        state["step"] += 1
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        work = scratch["work"]
        grad = decayed_grad(grad, param, group["weight_decay"], scratch)

        state_sum = state["sum"]
        addcmul_(state_sum, grad, grad, 1, work)
        std = work
        np.sqrt(state_sum, out=std)
        std += group["eps"]
        addcdiv_(param, grad, std, -lr, work=std)
