"""The in-place array operations that update rules are written with.

Each optimizer's ``_update`` is a few calls to these, read like PyTorch's update rules
(``add_``, ``addcmul_``, ``addcdiv_``, ``lerp_``, and weight decay in its two forms). A
name ending in ``_`` changes its first argument in place and returns nothing; the others
write into ``out`` and return it. All arrays have the parameter's shape and dtype.

No function allocates: an intermediate goes into ``work``, a parameter-sized scratch array
that must not be any of the other arguments (unless a docstring says it may). Scalars
(``alpha``, ``value``, ``weight``) may be Python or NumPy numbers (``alpha`` and
``value`` also arrays that broadcast against the parameter); writing into float32
arrays keeps them float32. Each computes what PyTorch's operation computes, in the same
order where it matters (``lerp_``), so results agree with ``torch.optim`` to within
rounding.
"""

from __future__ import annotations

import numpy as np

# (dtype, *values) -> the values as 0-d arrays; a few steps' worth (the step-dependent
# scalars of every step are new keys)
_OPERANDS: dict = {}
_OPERANDS_KEPT = 256


def as_operands(dtype, *values):
    """The scalars of one update as read-only 0-d arrays of the parameter's ``dtype``
    (cached), or ``values`` unchanged when one is an array (a population's one value per
    member).

    NumPy converts a Python float operand at every call, which on a small parameter
    costs as much as the arithmetic (``w *= 0.9``: 0.57 us against 0.28 us with a 0-d
    float32 array). The result is the same number: a Python float is cast to the
    array's dtype either way. (A NumPy float64 hyperparameter, which would make a
    float32 update compute in float64, computes in the parameter's dtype too, as
    PyTorch does.) 0 and 1 stay numbers, so that the shortcuts that skip a pass
    (``_is``) still see them.
    """
    key = (dtype, *values)
    try:
        found = _OPERANDS.get(key)
    except TypeError:  # an array hyperparameter: not hashable, used as it is
        return values
    if found is None:
        if len(_OPERANDS) >= _OPERANDS_KEPT:
            _OPERANDS.clear()
        found = []
        for value in values:
            if value == 0 or value == 1:
                found.append(value)
                continue
            operand = np.array(value, dtype)
            operand.flags.writeable = False
            found.append(operand)
        found = _OPERANDS[key] = tuple(found)
    return found


def _is(value, number) -> bool:
    """Whether a scalar hyperparameter is ``number`` (a shortcut's condition). A learning
    rate or weight decay may also be an array of one value per member of a population of
    networks trained as one (``chainrule.sweep``): it never takes the shortcut."""
    return not isinstance(value, np.ndarray) and value == number


def add_scaled_(target, x, alpha, work):
    """``target += alpha * x`` (PyTorch's ``target.add_(x, alpha=alpha)``); ``work`` may
    be ``x`` itself (an intermediate that is not needed afterwards)."""
    if _is(alpha, 1):
        target += x
        return
    np.multiply(x, alpha, out=work)
    target += work


def add_scaled(x, y, alpha, out):
    """``out = x + alpha * y`` (PyTorch's ``x.add(y, alpha=alpha)``); ``out`` is neither
    ``x`` nor ``y``. Returns ``out``."""
    np.multiply(y, alpha, out=out)
    out += x
    return out


def addcmul_(target, x, y, value, work):
    """``target += value * x * y`` (PyTorch's ``target.addcmul_(x, y, value=value)``).

    The product ``x * y`` is formed first and then scaled: when ``x`` is ``y`` (a square)
    the first pass reads one array instead of two.
    """
    np.multiply(x, y, out=work)
    if not _is(value, 1):
        work *= value
    target += work


def addcdiv_(target, x, y, value, work):
    """``target += value * x / y`` (PyTorch's ``target.addcdiv_(x, y, value=value)``).

    ``work`` may be ``y`` itself (a denominator computed in the scratch array): the
    quotient is formed first, then scaled, which rounds the same to within one unit in the
    last place.
    """
    np.divide(x, y, out=work)
    if not _is(value, 1):
        work *= value
    target += work


def lerp_(start, end, weight, work):
    """``start += weight * (end - start)``, the exponential moving average of ``end``
    (PyTorch's ``start.lerp_(end, weight)``), rounded as PyTorch rounds it.

    PyTorch computes ``end - (end - start) * (1 - weight)`` when ``|weight| >= 0.5``;
    both forms are the same number in exact arithmetic.
    """
    np.subtract(end, start, out=work)
    if abs(weight) < 0.5:
        work *= weight
        start += work
    else:
        work *= 1 - weight
        np.subtract(end, work, out=start)


def decayed_grad(grad, param, weight_decay, scratch):
    """The gradient of ``loss + weight_decay / 2 * ||p||^2``: ``grad + weight_decay * p``.

    L2 regularisation coupled to the gradient (SGD, RMSprop, Adam, Adagrad). Returns
    ``grad`` itself when weight_decay is 0; otherwise the sum, written into
    ``scratch["decayed_grad"]`` (``grad`` is not changed: it belongs to the parameter).
    """
    if _is(weight_decay, 0):
        return grad
    return add_scaled(grad, param, weight_decay, out=scratch["decayed_grad"])


def decoupled_decay_(param, lr, weight_decay):
    """``p *= 1 - lr * weight_decay``: shrink the parameter directly, outside the
    gradient's moving averages (AdamW's decoupled weight decay)."""
    if not _is(weight_decay, 0):
        param *= 1 - lr * weight_decay
