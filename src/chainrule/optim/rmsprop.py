"""RMSprop: divide the gradient by a running root mean square of recent gradients."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_hyperparameter, hyperparameter, lerp_, nonzero


class RMSprop(Optimizer):
    """RMSprop, PyTorch's algorithm step for step.

    For each parameter ``p`` with gradient ``g``, with v, g_avg and b starting at zero::

        g = g + weight_decay * p                               (if weight_decay != 0)
        v = alpha * v + (1 - alpha) * g**2                     (state "square_avg")
        g_avg = g_avg + (1 - alpha) * (g - g_avg)              (if centered: "grad_avg")
        denom = sqrt(v - g_avg**2) + eps  if centered  else  sqrt(v) + eps
        b = momentum * b + g / denom;  p = p - lr * b          (if momentum > 0)
        p = p - lr * g / denom                                 (otherwise)

    Args:
        params: Tensors, or parameter-group dicts (see ``Optimizer``).
        lr: learning rate (default 0.01).
        alpha: smoothing constant of the moving averages (default 0.99).
        eps: added to the denominator so it is never zero (default 1e-8).
        weight_decay: L2 penalty, added to the gradient as ``weight_decay * p``.
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance instead of its
            second moment.
    """

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False):
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        check_hyperparameter("eps", group["eps"])
        check_hyperparameter("momentum", group["momentum"])
        check_hyperparameter("weight_decay", group["weight_decay"])
        check_hyperparameter("alpha", group["alpha"])

    def _update(self, param, grad, state, group, scratch):
        lr, alpha, eps = hyperparameter(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, weight_decay = float(group["momentum"]), hyperparameter(group["weight_decay"])
        if not state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(param)
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        work = scratch[-1]
        if nonzero(weight_decay):
            np.multiply(param, weight_decay, out=scratch[0])
            scratch[0] += grad
            grad = scratch[0]

        square_avg = state["square_avg"]
        square_avg *= alpha
        np.multiply(grad, 1 - alpha, out=work)
        work *= grad
        square_avg += work

        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha, work)
            np.multiply(grad_avg, grad_avg, out=work)
            np.subtract(square_avg, work, out=work)
            np.sqrt(work, out=work)
        else:
            np.sqrt(square_avg, out=work)
        work += eps  # work is now the denominator

        np.divide(grad, work, out=work)
        if momentum > 0:
            buffer = state["momentum_buffer"]
            buffer *= momentum
            buffer += work
            np.multiply(buffer, -lr, out=work)
        else:
            work *= -lr
        param += work
