"""Adam and AdamW: momentum on the gradient, scaled by a running RMS of the gradient."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, OptimizerError, check_hyperparameter, lerp_, nonzero


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's algorithm step for step.

    For each parameter ``p`` with gradient ``g``, with m and v starting at zero, at step t::

        p = p * (1 - lr * weight_decay)       (decoupled weight decay: AdamW)
        g = g + weight_decay * p              (coupled, L2: Adam)
        m = m + (1 - beta1) * (g - m)         (state "exp_avg")
        v = beta2 * v + (1 - beta2) * g**2    (state "exp_avg_sq")
        v_max = max(v_max, v)                 (amsgrad: state "max_exp_avg_sq"; used for v)
        p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The bias corrections make m and v unbiased estimates in the first steps, when they
    still lean towards their zero start; eps is added after the correction, as PyTorch does.

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

    def _scratch_slots(self, group):
        coupled = nonzero(group["weight_decay"]) and not group["decoupled_weight_decay"]
        return 2 if coupled else 1

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
        work = scratch[-1]

        if nonzero(weight_decay):
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * weight_decay
            else:
                np.multiply(param, weight_decay, out=scratch[0])
                scratch[0] += grad
                grad = scratch[0]

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_(exp_avg, grad, 1 - beta1, work)
        exp_avg_sq *= beta2
        np.multiply(grad, 1 - beta2, out=work)
        work *= grad
        exp_avg_sq += work

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        np.sqrt(second_moment, out=work)
        work /= bias_correction2**0.5
        work += eps  # the denominator
        np.divide(exp_avg, work, out=work)
        work *= -step_size
        param += work


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``
    before each Adam step, instead of adding ``weight_decay * p`` to the gradient.

    Same arguments as ``Adam``; weight_decay defaults to 0.01.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=True)
