"""Gradients as values: ``grad`` computes them without touching any ``.grad``."""

from __future__ import annotations

import numpy as np

from ..engine import _seed_gradient, run_backward
from ..errors import GraphError
from ..tensor import Tensor


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """d(outputs)/d(inputs), returned as a tuple of Tensors (as ``torch.autograd.grad``).

    Args:
        outputs: a Tensor or a sequence of Tensors to differentiate.
        inputs: a Tensor or a sequence of Tensors to differentiate with respect to; they
            need not be leaves.
        grad_outputs: the upstream gradient for each output (needed for outputs with more
            than one element), or None.
        retain_graph: keep the graph for another backward pass (default: create_graph).
        create_graph: record the computation of the gradients, so they can be
            differentiated again (second derivatives, Hessians, gradient penalties).
        allow_unused: return None for an input the outputs do not depend on, instead of
            raising an error.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs] * len(outputs)
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise GraphError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs; "
                         "give one upstream gradient (or None) per output")
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise GraphError(f"grad: output {i} does not require grad (it was not computed "
                             "from any tensor with requires_grad=True)")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise GraphError(f"grad: input {i} does not require grad")
    seeds = [_seed_gradient(o, g, "grad") for o, g in zip(outputs, grad_outputs)]
    results = run_backward(
        outputs, seeds, retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph, capture=inputs,
    )
    gradients = []
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None and not allow_unused:
            raise GraphError(f"grad: input {i} was not used to compute the outputs; pass "
                             "allow_unused=True to get None for it")
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._wrap(g.astype(t.dtype, copy=True))
        gradients.append(g)
    return tuple(gradients)

