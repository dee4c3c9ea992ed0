"""Numerical gradients by centered differences, and checks of analytical gradients.

The analytical gradient from backpropagation is fast and exact; the numerical one,
(f(x + h) - f(x - h)) / 2h for every element, is slow and approximate but so simple it
is hard to get wrong. Comparing the two is how every backward rule here is tested.
"""

from __future__ import annotations

import numpy as np

from .errors import GradcheckError
from .tensor import Tensor, data_of


def rel_error(a, b) -> float:
    """The largest relative error max(|a - b| / max(1e-8, |a| + |b|)) (as in CS231n).

    Below about 1e-7 the two agree; around 1e-2 and above one of them is probably wrong.
    """
    a, b = np.asarray(data_of(a), dtype=np.float64), np.asarray(data_of(b), dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), initial=0.0))


def numerical_grad(f, x, h=1e-5, upstream=None) -> np.ndarray:
    """d f(x) / d x by centered differences, in float64.

    Args:
        f: called as ``f(x)``; returns a number, an array or a Tensor.
        x: the point, a float64 ndarray or a Tensor (a float32 Tensor is evaluated in
            float64 for the check and restored afterwards). Its elements are nudged in
            place one at a time and put back.
        h: the step.
        upstream: for an ``f`` with more than one output value, the weights of the
            outputs (the numerical gradient is then of ``sum(upstream * f(x))``).

    Returns: an array of ``x``'s shape.
    """
    holder = x if isinstance(x, Tensor) else None
    original = holder.data if holder is not None else x
    if not isinstance(original, np.ndarray) or original.dtype != np.float64:
        if holder is None:
            raise TypeError("numerical_grad: x must be a float64 ndarray or a Tensor, so that "
                            "it can be nudged in place")
        holder.data = original.astype(np.float64)
    values = holder.data if holder is not None else x

    def scalar(out):
        out = np.asarray(data_of(out), dtype=np.float64)
        return float(out.sum() if upstream is None else (out * data_of(upstream)).sum())

    grad = np.zeros(values.shape, dtype=np.float64)
    try:
        for i in np.ndindex(values.shape):
            saved = values[i]
            values[i] = saved + h
            plus = scalar(f(x))
            values[i] = saved - h
            minus = scalar(f(x))
            values[i] = saved
            grad[i] = (plus - minus) / (2 * h)
    finally:
        if holder is not None:
            holder.data = original
    return grad


def gradcheck(f, inputs, h=1e-6, atol=1e-5, rtol=1e-4, upstream=None, seed=0) -> bool:
    """Check backpropagation through ``f`` against numerical gradients, for every input.

    Args:
        f: called as ``f(*inputs)``, returns a Tensor.
        inputs: Tensors (float64 for a meaningful check); those with ``requires_grad``
            are checked.
        h: the finite-difference step.
        atol, rtol: an element passes when |analytical - numerical| <= atol + rtol *
            |numerical|.
        upstream: the upstream gradient for a non-scalar output; by default a fixed
            random one (from ``seed``), which checks every output at once.

    Returns True; raises ``GradcheckError`` naming the input, the worst element, both
    values and their relative error when a gradient disagrees.
    """
    from .autograd import grad

    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    out = f(*inputs)
    if upstream is None:
        upstream = np.random.default_rng(seed).standard_normal(out.shape)
    upstream = np.asarray(data_of(upstream), dtype=out.dtype)
    analytical = grad(out, [inputs[i] for i in checked], grad_outputs=upstream,
                      allow_unused=True)
    for i, g in zip(checked, analytical):
        t = inputs[i]
        a = np.zeros(t.shape) if g is None else g.data.astype(np.float64)
        n = numerical_grad(lambda _: f(*inputs), t, h=h, upstream=upstream)
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        if np.any(excess > 0) or not np.all(np.isfinite(a) == np.isfinite(n)):
            worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)),
                                     excess.shape) if excess.ndim else ()
            label = f"input {i}" + (f" ({t.name!r})" if t.name else "")
            raise GradcheckError(
                f"gradcheck: {label} of shape {t.shape}: at element {tuple(map(int, worst))} "
                f"the analytical gradient is {a[worst]:.10g} but the numerical one is "
                f"{n[worst]:.10g} (relative error {rel_error(a[worst], n[worst]):.3g})"
            )
    return True


def gradgradcheck(f, inputs, h=1e-6, atol=1e-7, rtol=1e-6, upstream=None, seed=1) -> bool:
    """Check second derivatives: ``gradcheck`` of x -> d <upstream, f(x)> / dx, with that
    gradient recorded by ``create_graph=True`` (as ``torch.autograd.gradgradcheck``).

    Every backward rule on the way then runs on Tensors; a rule that does not record its
    computation correctly (a constant where a function of the inputs belongs) gives a
    gradient of the gradient that disagrees with its numerical value. Also checks that
    the recorded gradient equals the plain one. Returns True or raises GradcheckError.
    """
    from .autograd import grad
    from .ops import concatenate

    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    out = f(*inputs)
    if upstream is None:
        upstream = np.random.default_rng(seed).standard_normal(out.shape)
    upstream = np.asarray(data_of(upstream), dtype=out.dtype)

    def gradient(*xs):
        wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        grads = grad(f(*xs), wanted, grad_outputs=upstream, create_graph=True)
        return concatenate([g.reshape(-1) for g in grads])

    tensors = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    plain = np.concatenate([g.data.reshape(-1) for g in
                            grad(f(*inputs), tensors, grad_outputs=upstream)])
    recorded = gradient(*inputs)
    if not np.allclose(recorded.data, plain, rtol=1e-10, atol=1e-12):
        raise GradcheckError("gradgradcheck: the gradient computed with create_graph=True "
                             "differs from the plain one; a backward rule records something "
                             "other than what it computes")
    return gradcheck(gradient, inputs, h=h, atol=atol, rtol=rtol, seed=seed)
