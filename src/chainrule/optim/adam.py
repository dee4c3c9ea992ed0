"""Adam and AdamW: momentum on the gradient, scaled by a running RMS of the gradient."""

from __future__ import annotations

import numpy as np

from .inplace import (
    add_scaled_,
    addcdiv_,
    addcmul_,
    as_operands,
    decayed_grad,
    decoupled_decay_,
)
from .optimizer import Optimizer, OptimizerError, check_hyperparameter


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's algorithm (the same formulas; the numbers agree to
    within rounding).

    For each parameter ``p`` with gradient ``g``, with m and v starting at zero, at step t::

        p = p * (1 - lr * weight_decay)       (decoupled weight decay: AdamW)
        g = g + weight_decay * p              (coupled, L2: Adam)
        m = beta1 * m + (1 - beta1) * g       (state "exp_avg")
        v = beta2 * v + (1 - beta2) * g**2    (state "exp_avg_sq")
        v_max = max(v_max, v)                 (amsgrad: state "max_exp_avg_sq"; used for v)
        p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The bias corrections make m and v unbiased estimates in the first steps, when they
    still lean towards their zero start; eps is added after the correction, as PyTorch does.
    The last line is computed as ``p - (c lr / (1 - beta1**t)) * m / (sqrt(v) + c eps)``
    with ``c = sqrt(1 - beta2**t)`` (numerator and denominator both multiplied by c): the
    same number up to rounding, with one pass over the parameters fewer.

    Args:
        params: Tensors, or parameter-group dicts (see ``Optimizer``).
        lr: learning rate (default 1e-3).
        betas: (beta1, beta2), the decay rates of m and v (default (0.9, 0.999)).
        eps: added to the denominator so it is never zero (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        amsgrad: divide by the largest v seen so far (AMSGrad) instead of the current one.
        decoupled_weight_decay: shrink the parameters directly instead (what AdamW does).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, decoupled_weight_decay=False):
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        check_hyperparameter("eps", group["eps"])
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise OptimizerError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_hyperparameter("beta1 (betas[0])", betas[0], 0.0, 1.0)
        check_hyperparameter("beta2 (betas[1])", betas[1], 0.0, 1.0)
        check_hyperparameter("weight_decay", group["weight_decay"])

    def _update(self, param, grad, state, group, scratch):
        # Python or NumPy numbers alike: every update below writes into float32/64 arrays
        # in place, so a float64 hyperparameter never changes a parameter's dtype.
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        work = scratch["work"]
        if group["decoupled_weight_decay"]:
            decoupled_decay_(param, lr, weight_decay)
        else:
            grad = decayed_grad(grad, param, weight_decay, scratch)

        # both bias corrections in the two scalars, not in a pass over the array
        root_correction2 = (1 - beta2**step) ** 0.5
        step_size = lr * root_correction2 / (1 - beta1**step)
        beta1, keep1, beta2, keep2, eps_term, descent = as_operands(
            param.dtype, beta1, 1 - beta1, beta2, 1 - beta2, eps * root_correction2, -step_size)

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # m = beta1 * m + (1 - beta1) * g: scaling m in place reads one array less than
        # PyTorch's m.lerp_(g, 1 - beta1) (equal up to rounding)
        exp_avg *= beta1
        add_scaled_(exp_avg, grad, keep1, work)
        exp_avg_sq *= beta2
        addcmul_(exp_avg_sq, grad, grad, keep2, work)  # v = beta2 * v + (1 - beta2) * g**2
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)

        denom = work  # sqrt(v) + eps * sqrt(1 - beta2**t)
        np.sqrt(second_moment, out=denom)
        denom += eps_term
        addcdiv_(param, exp_avg, denom, descent, work=denom)  # p -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``
    before each Adam step, instead of adding ``weight_decay * p`` to the gradient.

    Same arguments as ``Adam``; weight_decay defaults to 0.01.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=True)
