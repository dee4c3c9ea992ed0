"""Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay."""

from __future__ import annotations

import numpy as np

from .inplace import add_scaled, add_scaled_, as_operands, decayed_grad
from .optimizer import Optimizer, OptimizerError, check_hyperparameter


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's algorithm step for step.

    For each parameter ``p`` with gradient ``g`` (all arrays of p's shape), at step t::

        g = g + weight_decay * p                      (if weight_decay != 0)
        b = g                                         (first step)
        b = momentum * b + (1 - dampening) * g        (later steps)
        g = g + momentum * b  if nesterov  else  b    (if momentum != 0)
        p = p - lr * g

    The momentum buffer ``b`` (``state[p]["momentum_buffer"]``) starts as the first
    gradient, not as zeros, so the first step is a plain gradient step.

    Args:
        params: Tensors, or parameter-group dicts (see ``Optimizer``).
        lr: learning rate (default 1e-3, as in PyTorch 2).
        momentum: momentum factor mu (default 0: no momentum).
        dampening: tau, the share of the new gradient left out of the buffer (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
        weight_decay: L2 penalty lambda, added to the gradient as ``lambda * p``.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, nesterov=False,
                 weight_decay=0):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        check_hyperparameter("momentum", group["momentum"])
        check_hyperparameter("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError("Nesterov momentum requires a momentum > 0 and zero dampening "
                                 f"(got momentum={group['momentum']}, "
                                 f"dampening={group['dampening']})")

    def _update(self, param, grad, state, group, scratch):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        work = scratch["work"]
        grad = decayed_grad(grad, param, group["weight_decay"], scratch)
        if momentum != 0:
            momentum, keep, descent = as_operands(param.dtype, momentum, 1 - dampening, -lr)
            buffer = state.get("momentum_buffer")
            if buffer is None:  # the first step: the buffer starts as the gradient
                buffer = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
            else:
                buffer *= momentum
                add_scaled_(buffer, grad, keep, work)
            if group["nesterov"]:  # look ahead: the gradient plus the momentum it will get
                grad = add_scaled(grad, buffer, momentum, out=work)
            else:
                grad = buffer
        else:
            (descent,) = as_operands(param.dtype, -lr)
        add_scaled_(param, grad, descent, work)
