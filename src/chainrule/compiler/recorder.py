"""What a compiled step sees while it runs eagerly the first time: the ``Recorder``.

``tracing.recorder`` points at a Recorder while the step runs; the engine, the
optimizers, ``Module.__call__`` and ``F.dropout`` report to it. It writes down, in
order, every operation (with where each input came from), every backward pass (with
the order the engine walks its graph in), every ``zero_grad`` and ``step`` of an
optimizer and every random draw. The program that replays the step is built from it
(``program.build``).

Where an input came from is a *reference*, a small tuple:

- ``("arg", i)``: the array of the step's i-th argument;
- ``("node", k)``: the output of the k-th recorded operation;
- ``("leaf", j)``: a tensor that requires grad and was made before the step (a
  parameter); its ``.data`` is read at every replay;
- ``("random", r)``: the r-th random draw (a dropout mask, drawn anew at every replay);
- ``("cast", i, dtype)``: the step's i-th argument converted to ``dtype``;
- ``("const", c)``: an array that outlives the step (read at every replay, so changes
  made to it in place are seen);
- ``("static", value)``: a Python value (a number, a string, an axis).
"""

from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from ..engine import backward_order, is_grad_enabled
from ..tensor import Tensor


class Node:
    """One recorded operation: ``fn.forward(*inputs, **params)``."""

    __slots__ = ("index", "fn", "inputs", "params", "needs", "shape", "dtype")

    def __init__(self, index, fn, inputs, params, needs, shape, dtype):
        self.index, self.fn, self.inputs, self.params = index, fn, inputs, params
        self.needs, self.shape, self.dtype = needs, shape, dtype

    def __repr__(self):
        return f"operation {self.index} ({self.fn.name})"


def _own_thread_only(report):
    """``tracing.recorder`` is one for the process: other threads' work is not the step's."""

    @functools.wraps(report)
    def method(self, *args):
        if threading.get_ident() == self.thread:
            report(self, *args)

    return method


class Recorder:
    """Collects one eager run of a step; ``problem`` says why it cannot be replayed."""

    def __init__(self, arg_arrays):
        self.thread = threading.get_ident()
        self.arg_arrays = arg_arrays
        self.arg_index = {id(a): i for i, a in enumerate(arg_arrays) if a is not None}
        self.nodes: list[Node] = []
        self.events: list[tuple] = []  # ("node", k), ("random", r), ("backward", ...), ...
        self.leaves: list[Tensor] = []
        self.randoms: list[tuple] = []  # (function, args) that made each random array
        self.consts: list[np.ndarray] = []
        self.modules: dict[int, object] = {}
        self.values: list[np.ndarray] = []  # each operation's output (for check=True)
        self.problem: str | None = None
        self._node_of_tensor: dict[int, int] = {}
        self._node_of_array: dict[int, int] = {}
        self._leaf_index: dict[int, int] = {}
        self._random_of_array: dict[int, int] = {}
        self._const_index: dict[int, int] = {}
        self._tensors: list[Tensor] = []  # alive while recording, so that ids stay unique
        self._random_arrays: list[np.ndarray] = []
        self._has_grad: dict[int, bool] = {}  # leaf -> has .grad, as the events leave it

    def refuse(self, why: str):
        if self.problem is None:
            self.problem = why

    # ----- where a value came from ----------------------------------------------------------
    def ref(self, x):
        if isinstance(x, Tensor):
            k = self._node_of_tensor.get(id(x))
            if k is not None:
                return ("node", k)
            if x._ctx is not None:
                self.refuse("an operation uses a tensor computed before the step began, "
                            "whose graph the step does not own; compute it inside the step")
            if x.requires_grad or id(x.data) not in self.arg_index:
                # A parameter, trainable or frozen: its .data and requires_grad are read
                # (and guarded) at every replay.
                return ("leaf", self.leaf(x))
            x = x.data
        if not isinstance(x, np.ndarray):
            return ("static", x)
        for table, kind in ((self.arg_index, "arg"), (self._node_of_array, "node"),
                            (self._random_of_array, "random")):
            found = table.get(id(x))
            if found is not None:
                return (kind, found)
        index = self._const_index.get(id(x))
        if index is None:
            index = self._const_index[id(x)] = len(self.consts)
            self.consts.append(x)
        return ("const", index)

    def leaf(self, t) -> int:
        j = self._leaf_index.get(id(t))
        if j is None:
            j = self._leaf_index[id(t)] = len(self.leaves)
            self.leaves.append(t)
        return j

    # ----- what the library reports -----------------------------------------------------------
    @_own_thread_only
    def on_operation(self, fn, inputs, params, out):
        grad = is_grad_enabled()
        needs = tuple(grad and isinstance(x, Tensor) and x.requires_grad for x in inputs)
        node = Node(len(self.nodes), fn, [self.ref(x) for x in inputs],
                    {name: self.ref(v) for name, v in params.items()}, needs,
                    out.data.shape, out.data.dtype)
        self._node_of_tensor[id(out)] = node.index
        self._node_of_array.setdefault(id(out.data), node.index)
        self._tensors.append(out)
        self.values.append(out.data)
        self.nodes.append(node)
        self.events.append(("node", node.index))

    @_own_thread_only
    def on_backward(self, roots, root_grads, retain_graph, create_graph, capture):
        if capture is not None or create_graph:
            self.refuse("the step takes gradients with autograd.grad or create_graph=True; "
                        "a compiled step supports loss.backward()")
            return
        order = []
        for t in backward_order(roots):
            if t._ctx is None:
                order.append(("leaf", self.leaf(t)))
                continue
            k = self._node_of_tensor.get(id(t))
            if k is None:
                self.refuse("backward() runs through a graph built before the step began")
                return
            if t._retains_grad:
                self.refuse("the step calls retain_grad() on an intermediate tensor")
            order.append(("node", k))
        self.events.append(("backward", [self.ref(t) for t in roots],
                            [self.ref(g) for g in root_grads], order))
        for ref in order:
            if ref[0] == "leaf":
                self._has_grad[ref[1]] = True

    @_own_thread_only
    def on_zero_grad(self, owner, set_to_none):
        self.events.append(("zero_grad", owner, set_to_none))
        if set_to_none:
            params = (owner.parameters() if hasattr(owner, "parameters")
                      else (p for g in owner.param_groups for p in g["params"]))
            for p in params:
                j = self._leaf_index.get(id(p))
                if j is not None:
                    self._has_grad[j] = False

    @_own_thread_only
    def on_optimizer_step(self, optimizer, closure):
        if closure is not None:
            self.refuse("optimizer.step(closure) runs the closure again; call step() "
                        "without a closure in a compiled step")
        stepped = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self.events.append(("step", optimizer, stepped))

    @_own_thread_only
    def on_random(self, array, function, args):
        r = len(self.randoms)
        self.randoms.append((function, args))
        self._random_of_array[id(array)] = r
        self._random_arrays.append(array)
        self.events.append(("random", r))

    @_own_thread_only
    def on_module_call(self, module):
        self.modules.setdefault(id(module), module)
        if module._forward_hooks:
            self.refuse(f"a forward hook is registered on a {type(module).__name__}; it "
                        "runs Python code at every call, which a replay would skip")

    @_own_thread_only
    def on_value_read(self, tensor, how):
        self.refuse(f"the step reads a tensor's value with {how} while it runs, so its "
                    "Python code may depend on values a replay cannot see; return the "
                    "tensor from the step and read it outside")

    @_own_thread_only
    def on_in_place(self, tensor, ufunc):
        self.refuse(f"the step changes a tensor in place ({ufunc.__name__}); only "
                    "updates made by an optimizer's step() are replayed")

    # ----- after the step returned ------------------------------------------------------------
    def finish(self):
        """Drop the step's tensors, then classify the constants: an array nobody else
        holds was made inside the step, so a replay could not know its new value --
        unless it is one of the step's arguments converted to another dtype."""
        self._tensors.clear()
        self.casts = {}
        for j in range(len(self.leaves)):
            leaf = self.leaves[j]
            # References: self.leaves, the local name, getrefcount's argument.
            if not leaf.requires_grad and sys.getrefcount(leaf) <= 3:
                self.refuse(f"an operation uses a tensor made inside the step (shape "
                            f"{leaf.shape}) outside chainrule's operations, which a replay "
                            "could not recompute; make it with chainrule operations or pass "
                            "it to the step as an argument")
            del leaf
        self.leaf_flags = [leaf.requires_grad for leaf in self.leaves]
        for j, expected in self._has_grad.items():
            if (self.leaves[j].grad is not None) != expected:
                self.refuse("the step sets a tensor's .grad by hand, which a replay would "
                            "not do; reset gradients with optimizer.zero_grad() or "
                            "model.zero_grad()")
        for index in range(len(self.consts)):
            array = self.consts[index]
            # References: self.consts, the local name, getrefcount's argument.
            if sys.getrefcount(array) > 3:
                continue
            cast = self._as_cast(array)
            if cast is None:
                self.refuse("an operation uses an array made inside the step outside "
                            f"chainrule's operations (shape {array.shape}, {array.dtype}), "
                            "which a replay could not recompute; make it with chainrule "
                            "operations or pass it to the step as an argument")
            else:
                self.casts[index] = cast
            del array

    def _as_cast(self, array):
        for i, arg in enumerate(self.arg_arrays):
            if (arg is not None and arg.shape == array.shape and arg.dtype != array.dtype
                    and np.array_equal(arg.astype(array.dtype), array)):
                return ("cast", i, array.dtype)
        return None

    def node_of(self, x):
        """The node a returned value comes from (a Tensor or its array), or None."""
        if isinstance(x, Tensor):
            k = self._node_of_tensor.get(id(x))
            return k if k is not None else self._node_of_array.get(id(x.data))
        if isinstance(x, np.ndarray):
            return self._node_of_array.get(id(x))
        return None
