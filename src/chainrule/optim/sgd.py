"""Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, OptimizerError, check_hyperparameter, hyperparameter, nonzero


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
        lr, momentum = hyperparameter(group["lr"]), float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = hyperparameter(group["weight_decay"])
        work = scratch[-1]  # the last slot is free for intermediates
        if nonzero(weight_decay):
            np.multiply(param, weight_decay, out=scratch[0])
            scratch[0] += grad
            grad = scratch[0]  # the gradient of loss + (lambda / 2) ||p||^2
        direction = grad
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
            else:
                buffer *= momentum
                if dampening != 0:
                    np.multiply(grad, 1 - dampening, out=work)
                    buffer += work
                else:
                    buffer += grad
            if group["nesterov"]:
                np.multiply(buffer, momentum, out=work)
                work += grad  # look ahead: the gradient plus the momentum it is about to get
                direction = work
            else:
                direction = buffer
        np.multiply(direction, -lr, out=work)
        param += work
