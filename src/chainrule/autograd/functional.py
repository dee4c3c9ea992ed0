"""Whole Jacobians and Hessians, and products with them, as ``torch.autograd.functional``.

Backpropagation never forms a Jacobian: each backward rule computes the vector-Jacobian
product upstream @ J directly. These functions are for looking at the matrices
themselves on small problems: ``jacobian`` builds J one row at a time (one backward pass
per output element), ``hessian`` is the Jacobian of the gradient, ``vjp`` is v^T J
(one backward pass) and ``jvp`` is J u (two backward passes, by the "double vjp" trick:
u -> J^T u is linear, so differentiating <J^T u, v> with respect to u gives J v).
``jacobian_size`` tells how large the Jacobian of a layer would be, to see why.

Structures follow PyTorch: a single Tensor input gives a Tensor result, a tuple of
inputs a tuple; ``jacobian(f, x)`` has shape ``f(x).shape + x.shape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..engine import enable_grad
from ..errors import ChainruleError, ShapeError
from ..tensor import Tensor
from .gradients import grad


def _as_tuple(x, what: str, where: str) -> tuple[bool, tuple]:
    if isinstance(x, Tensor):
        return False, (x,)
    if isinstance(x, tuple | list) and all(isinstance(t, Tensor) for t in x):
        return True, tuple(x)
    raise ChainruleError(f"{where}: {what} must be a Tensor or a tuple of Tensors, "
                         f"got {type(x).__name__}")


def _prepare(inputs, create_graph: bool) -> tuple:
    """Inputs to differentiate at: fresh leaves, or (with create_graph) the inputs
    themselves where they require grad, so that results stay connected to them."""
    prepared = []
    for t in inputs:
        if create_graph and t.requires_grad:
            prepared.append(t)
        else:
            prepared.append(Tensor._wrap(t.data).requires_grad_(True))
    return tuple(prepared)


def _call(func, inputs, where: str):
    with enable_grad():
        outputs = func(*inputs)
    return _as_tuple(outputs, "the result of func", where)


def _zeros(shape, dtype) -> Tensor:
    return Tensor._wrap(np.zeros(shape, dtype=dtype))


def _grads(output, inputs, create_graph, grad_outputs=None) -> list[Tensor]:
    """d output / d inputs with zeros for inputs the output does not depend on."""
    if not output.requires_grad:
        return [_zeros(t.shape, t.dtype) for t in inputs]
    grads = grad(output, inputs, grad_outputs=grad_outputs, retain_graph=True,
                 create_graph=create_graph, allow_unused=True)
    return [_zeros(t.shape, t.dtype) if g is None else g for g, t in zip(grads, inputs)]


def _shape_result(table, out_tuple: bool, in_tuple: bool):
    if out_tuple and in_tuple:
        return tuple(tuple(row) for row in table)
    if out_tuple:
        return tuple(row[0] for row in table)
    return tuple(table[0]) if in_tuple else table[0][0]


def _detach(ts, create_graph):
    return ts if create_graph else tuple(t.detach() for t in ts)


def jacobian(func, inputs, create_graph=False):
    """The Jacobian of ``func`` at ``inputs``: d func(inputs)[i] / d inputs[j].

    Args:
        func: takes Tensors, returns a Tensor or a tuple of Tensors.
        inputs: a Tensor or a tuple of Tensors (floating point).
        create_graph: make the result differentiable (for Hessians and the like).

    Returns: for one output and one input a Tensor of shape out.shape + in.shape; a tuple
    over inputs (one output), over outputs (one input), or a tuple of tuples
    ``result[i][j]`` for output i and input j.
    """
    in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = _prepare(inputs, create_graph)
    out_tuple, outputs = _call(func, inputs, "jacobian")
    table = []
    for out in outputs:
        rows = [[] for _ in inputs]
        for k in range(out.size if out.requires_grad else 0):
            onehot = np.zeros(out.shape, dtype=out.dtype)
            onehot.flat[k] = 1
            for j, g in enumerate(_grads(out, inputs, create_graph, onehot)):
                rows[j].append(g)
        table.append([_stack_rows(r, out, t, create_graph) for r, t in zip(rows, inputs)])
    return _shape_result(table, out_tuple, in_tuple)


def _stack_rows(rows, out, inp, create_graph) -> Tensor:
    shape = out.shape + inp.shape
    if not rows:
        return _zeros(shape, inp.dtype)
    if create_graph:
        return ops.reshape(ops.stack(rows), shape)
    return Tensor._wrap(np.stack([r.data for r in rows]).reshape(shape))


def vjp(func, inputs, v=None, create_graph=False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product, one backward pass.

    ``v`` has the structure and shapes of func's output (a Tensor, or a tuple); it may be
    omitted when every output has one element. The product has the structure of inputs.
    """
    in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
    inputs = _prepare(inputs, create_graph)
    out_tuple, outputs = _call(func, inputs, "vjp")
    vs = _vectors(v, outputs, "vjp", "v", "output")
    total = _weighted_sum(outputs, vs)
    grads = _grads(total, inputs, create_graph) if total is not None else \
        [_zeros(t.shape, t.dtype) for t in inputs]
    outputs = _detach(outputs, create_graph)
    return (outputs if out_tuple else outputs[0]), (tuple(grads) if in_tuple else grads[0])


def jvp(func, inputs, v=None, create_graph=False):
    """``(func(inputs), J v)``: the Jacobian-vector product (a directional derivative).

    ``v`` has the structure and shapes of inputs (may be omitted when every input has one
    element); the product has the structure of func's output. Computed with two backward
    passes: g(u) = J^T u is linear in u, so the gradient of <g(u), v> in u is J v.
    """
    in_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
    inputs = _prepare(inputs, create_graph)
    out_tuple, outputs = _call(func, inputs, "jvp")
    vs = _vectors(v, inputs, "jvp", "v", "input")
    with enable_grad():
        us = tuple(Tensor(np.zeros(o.shape, dtype=_float(o.dtype)), requires_grad=True)
                   for o in outputs)
        total = _weighted_sum(outputs, us)
        result = [_zeros(o.shape, o.dtype) for o in outputs]
        if total is not None:
            g = _grads(total, inputs, create_graph=True)
            inner = _weighted_sum(g, vs)
            if inner is not None:
                result = [r if o.requires_grad else _zeros(o.shape, o.dtype)
                          for r, o in zip(_grads(inner, us, create_graph), outputs)]
    outputs = _detach(outputs, create_graph)
    return (outputs if out_tuple else outputs[0]), (tuple(result) if out_tuple else result[0])


def _float(dtype):
    return dtype if np.dtype(dtype).kind == "f" else np.float32


def _weighted_sum(tensors, weights):
    """sum_i <tensors[i], weights[i]> over the tensors that require grad, or None."""
    total = None
    for t, w in zip(tensors, weights):
        if t.requires_grad:
            term = ops.sum(ops.multiply(t, w))
            total = term if total is None else ops.add(total, term)
    return total


def _vectors(v, like, where, name, kind) -> tuple:
    if v is None:
        if any(t.size != 1 for t in like):
            raise ChainruleError(f"{where}: {name} can be omitted only when every {kind} has "
                                 f"a single element; pass {name} with the {kind}s' shapes")
        return tuple(_zeros(t.shape, t.dtype) + 1 for t in like)
    vs = v if isinstance(v, tuple | list) else (v,)
    if len(vs) != len(like):
        raise ChainruleError(f"{where}: {name} has {len(vs)} entries but there are "
                             f"{len(like)} {kind}s")
    vs = tuple(x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=t.dtype))
               for x, t in zip(vs, like))
    for i, (x, t) in enumerate(zip(vs, like)):
        if x.shape != t.shape:
            raise ShapeError(f"{where}: {name}[{i}] has shape {x.shape} but {kind} {i} has "
                             f"shape {t.shape}")
    return vs


def _gradient_function(func, in_tuple, where, seen=None):
    """x -> grad func(x) as a differentiable function; ``seen`` collects func's values."""

    def gradient(*xs):
        with enable_grad():
            out = func(*xs)
        if not isinstance(out, Tensor) or out.size != 1:
            shape = out.shape if isinstance(out, Tensor) else type(out).__name__
            raise ChainruleError(f"{where}: func must return a Tensor with a single element, "
                                 f"got {shape}")
        if seen is not None:
            seen.append(out)
        grads = _grads(out, xs, create_graph=True)
        return tuple(grads) if in_tuple else grads[0]

    return gradient


def hessian(func, inputs, create_graph=False):
    """The Hessian of a scalar ``func``: the Jacobian of its gradient.

    Returns a Tensor of shape in.shape + in.shape for one input, or a tuple of tuples
    ``H[i][j]`` of shape in_i.shape + in_j.shape for a tuple of inputs.
    """
    in_tuple, _ = _as_tuple(inputs, "inputs", "hessian")
    return jacobian(_gradient_function(func, in_tuple, "hessian"), inputs,
                    create_graph=create_graph)


def vhp(func, inputs, v, create_graph=False):
    """``(func(inputs), v^T H)``: a vector times the Hessian of a scalar ``func``, without
    forming H (two backward passes: the gradient, then the gradient of <grad, v>).

    ``v`` has the structure and shapes of inputs, and so does the product.
    """
    in_tuple, _ = _as_tuple(inputs, "inputs", "vhp")
    seen = []
    _, product = vjp(_gradient_function(func, in_tuple, "vhp", seen), inputs, v, create_graph)
    return _detach(seen[-1:], create_graph)[0], product


def hvp(func, inputs, v, create_graph=False):
    """``(func(inputs), H v)``: the Hessian of a scalar ``func`` times a vector, without
    forming H. Equal to ``vhp`` wherever the Hessian is symmetric (f twice continuously
    differentiable); computed here as a Jacobian-vector product of the gradient.
    """
    in_tuple, _ = _as_tuple(inputs, "inputs", "hvp")
    seen = []
    _, product = jvp(_gradient_function(func, in_tuple, "hvp", seen), inputs, v, create_graph)
    return _detach(seen[-1:], create_graph)[0], product


# ----- how big a Jacobian is ---------------------------------------------------------------
_BYTES = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
_COUNTS = [(1e15, "quadrillion"), (1e12, "trillion"), (1e9, "billion"), (1e6, "million")]


@dataclass(frozen=True)
class JacobianSize:
    """The size of the full Jacobian of a map from ``in_shape`` to ``out_shape``."""

    in_shape: tuple
    out_shape: tuple
    dtype: str
    rows: int  # prod(out_shape)
    cols: int  # prod(in_shape)
    itemsize: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def entries(self) -> int:
        return self.rows * self.cols

    @property
    def nbytes(self) -> int:
        return self.entries * self.itemsize

    @property
    def memory(self) -> str:
        """``nbytes`` in decimal units, e.g. "671.1 GB"."""
        size, unit = float(self.nbytes), 0
        while size >= 1000 and unit < len(_BYTES) - 1:
            size, unit = size / 1000, unit + 1
        return f"{self.nbytes} B" if unit == 0 else f"{size:.1f} {_BYTES[unit]}"

    def as_dict(self) -> dict:
        return dict(in_shape=self.in_shape, out_shape=self.out_shape, dtype=self.dtype,
                    shape=self.shape, entries=self.entries, nbytes=self.nbytes,
                    memory=self.memory)

    def __str__(self):
        count = next((f"{self.entries / n:.1f} {word}" for n, word in _COUNTS
                      if self.entries >= n), f"{self.entries:,}")
        head = (f"Jacobian of {self.in_shape} -> {self.out_shape}: {self.rows:,} x "
                f"{self.cols:,} = {count} entries, {self.memory} in {self.dtype}; backward "
                "never builds it: ")
        if self.in_shape == self.out_shape:
            return head + (f"it computes upstream @ J in O({self.rows:,}) work for elementwise "
                           "ops")
        return head + "each backward rule computes upstream @ J directly (upstream @ W.T for x @ W)"


def jacobian_size(in_shape, out_shape, dtype="float32") -> JacobianSize:
    """How large the Jacobian d out / d in would be: prod(out) x prod(in) entries.

    ``jacobian_size((100, 4096), (100, 4096))`` is the lecture's example: an elementwise
    layer of width 4096 on a minibatch of 100 has a 409,600 x 409,600 Jacobian.
    """
    shapes = []
    for name, shape in (("in_shape", in_shape), ("out_shape", out_shape)):
        shape = (shape,) if isinstance(shape, int | np.integer) else shape
        try:
            shape = tuple(int(n) for n in shape)
        except (TypeError, ValueError):
            raise ChainruleError(f"jacobian_size: {name} must be a shape such as (100, 4096), "
                                 f"got {shape!r}") from None
        if any(n < 0 for n in shape):
            raise ChainruleError(f"jacobian_size: {name} {shape} has a negative size")
        shapes.append(shape)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ChainruleError(f"jacobian_size: unknown dtype {dtype!r}") from None
    return JacobianSize(shapes[0], shapes[1], dt.name, math.prod(shapes[1]),
                        math.prod(shapes[0]), dt.itemsize)
