"""How one recorded operation is replayed: its forward and backward as generated lines.

A kernel writes the NumPy calls of one operation into the replay (``Program.em``):
``forward()`` defines ``v<k>``, the operation's value; ``backward(upstream, dests)``
returns, for each input, the name of its downstream gradient (``None`` where the input
needs none). ``dests[i]``, when given, is the array the gradient must be written into
(a parameter's slot of a flat gradient array).

``Generic`` replays any ``Function`` by calling its own ``forward`` and ``backward``
(arrays allocated by NumPy as in eager code). The kernels below it call the very NumPy
functions of their operation's eager code, in the same order, but into buffers
allocated once (``out=``), so their results are bit for bit those of eager code.
"""

from __future__ import annotations

import numpy as np

from ..ops.elementwise import Multiply, ReLU, Sigmoid, Tanh, stable_sigmoid, zero_row
from ..ops.linalg import Linear, batch_ones, stored_transposed
from ..ops.loss import CrossEntropy


class Generic:
    """Any operation: its ``Function.forward`` and ``Function.backward`` as they are."""

    def __init__(self, prog, node):
        self.prog, self.node, self.em = prog, node, prog.em
        self.k = node.index

    def forward(self):
        em, k, node = self.em, self.k, self.node
        inputs = "".join(self.prog.expr(r) + ", " for r in node.inputs)
        params = "".join(f", {name}={self.prog.expr(r)}" for name, r in node.params.items())
        fn = em.bind(node.fn, "F")
        em.emit(f"x{k} = ({inputs})")
        em.emit(f"ctx{k} = Context()")
        em.emit(f"v{k} = _as_array({fn}.forward(ctx{k}, *x{k}{params}))", 1)

    def backward(self, upstream, dests):
        em, k, node = self.em, self.k, self.node
        fn = em.bind(node.fn, "F")
        out = f"v{k}" if node.fn.saves_output else "None"
        em.emit(f"ctx{k}.fn, ctx{k}.inputs, ctx{k}.out = {fn}, x{k}, {out}")
        em.emit(f"ctx{k}.needs_input_grad, ctx{k}.xp = {em.bind(list(node.needs), 'n')}, "
                "ARRAY_MATH")
        em.emit(f"d{k} = {fn}.backward(ctx{k}, {upstream})", 1)
        em.emit(f"if type(d{k}) is not tuple: d{k} = (d{k},)")
        names = []
        for i, need in enumerate(node.needs):
            if not need:
                names.append(None)
                continue
            name = f"d{k}_{i}"
            em.emit(f"{name} = _fit(d{k}[{i}], x{k}[{i}], {node.fn.name!r})")
            if dests[i] is not None:
                em.emit(f"np.copyto({dests[i]}, {name})", 1)
                name = dests[i]
            names.append(name)
        return names


class LinearKernel(Generic):
    """``x @ W.T + b`` (``ops.linalg.Linear``) for a 2-D float input of W's dtype."""

    @staticmethod
    def fits(prog, node):
        x, w = prog.value(node.inputs[0]), prog.value(node.inputs[1])
        return (isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype == w.dtype
                and node.dtype == w.dtype)

    def forward(self):
        em, prog, node, k = self.em, self.prog, self.node, self.k
        x, w = (prog.expr(r) for r in node.inputs[:2])
        self.out = em.buffer(node.shape, node.dtype)
        self.prog.owned_outputs.add(node.index)
        em.emit(f"np.matmul({x}, {self._transposed(w)}, out={self.out})", 1)
        if len(node.inputs) > 2:
            em.emit(f"np.add({self.out}, {prog.expr(node.inputs[2])}, out={self.out})", 1)
        em.emit(f"v{k} = {self.out}")

    def _transposed(self, w):
        view = self.em.namespace.get(w)
        if isinstance(view, np.ndarray):  # a parameter's fixed view: transpose it once
            return self.em.bind(view.T, "wT")
        return f"{w}.T"

    def backward(self, upstream, dests):
        em, prog, node = self.em, self.prog, self.node
        x, w = (prog.expr(r) for r in node.inputs[:2])
        names = [None] * len(node.inputs)
        if node.needs[0]:
            names[0] = dests[0] or em.buffer(prog.value(node.inputs[0]).shape, node.dtype)
            em.emit(f"np.matmul({upstream}, {w}, out={names[0]})", 1)
            if dests[0] is None:
                prog.private_grads.add(names[0])
        if node.needs[1]:  # as Linear.backward, for the recorded weight's layout
            weight = prog.value(node.inputs[1])
            if stored_transposed(weight):
                names[1] = dests[1] or em.buffer(weight.shape, node.dtype, order="F")
                grad_t = em.bind(em.namespace[names[1]].T, "GT")
                em.emit(f"np.matmul({x}.T, {upstream}, out={grad_t})", 1)
            else:
                names[1] = dests[1] or em.buffer(weight.shape, node.dtype)
                em.emit(f"np.matmul({upstream}.T, {x}, out={names[1]})", 1)
        if len(node.inputs) > 2 and node.needs[2]:
            names[2] = dests[2] or em.buffer(prog.value(node.inputs[2]).shape, node.dtype)
            n = prog.value(node.inputs[0]).shape[0]
            ones = em.bind(batch_ones(n, node.dtype), "ones")  # Linear.backward's product
            em.emit(f"np.matmul({ones}, {upstream}, out={names[2]})", 1)
        return names


class ReLUKernel(Generic):
    """``mask = x > 0; max(x, zero_row(x))`` forward, ``upstream * mask`` backward."""

    @staticmethod
    def fits(prog, node):
        return isinstance(prog.value(node.inputs[0]), np.ndarray)

    def forward(self):
        em, k, node = self.em, self.k, self.node
        x = self.prog.expr(node.inputs[0])
        like = self.prog.value(("node", k))  # eager's output: its memory layout
        self.mask = em.buffer(node.shape, bool, "mask", like=like)
        # Into the input's own buffer when nothing else reads it (a Linear's output):
        # one array less to stream through the cache.
        self.out = x if self.prog.owns_alone(node.inputs[0], node) else em.buffer(
            node.shape, node.dtype, like=like)
        em.emit(f"np.greater({x}, 0, out={self.mask})", 1)
        zeros = em.bind(zero_row(self.prog.value(node.inputs[0])), "z")
        em.emit(f"np.maximum({x}, {zeros}, out={self.out})", 1)
        em.emit(f"v{k} = {self.out}")

    def backward(self, upstream, dests):
        if not self.node.needs[0]:
            return [None]
        grad = dests[0]
        if grad is None:  # into the upstream's buffer if it was made for this alone
            grad = upstream if upstream in self.prog.private_grads else self.em.buffer(
                self.node.shape, self.node.dtype, like=self.prog.value(self.node.inputs[0]))
        self.em.emit(f"np.multiply({upstream}, {self.mask}, out={grad})", 1)
        return [grad]


class TanhKernel(Generic):
    """``tanh(x)`` forward; ``upstream * (1 - out * out)`` backward."""

    fits = ReLUKernel.fits

    def forward(self):
        em, k, node = self.em, self.k, self.node
        self.out = em.buffer(node.shape, node.dtype, like=self.prog.value(("node", k)))
        em.emit(f"np.tanh({self.prog.expr(node.inputs[0])}, out={self.out})", 1)
        em.emit(f"v{k} = {self.out}")

    def backward(self, upstream, dests):
        if not self.node.needs[0]:
            return [None]
        em, node, out = self.em, self.node, self.out
        like = self.prog.value(node.inputs[0])
        work = em.buffer(node.shape, node.dtype, like=like)
        grad = dests[0] or em.buffer(node.shape, node.dtype, like=like)
        em.emit(f"np.multiply({out}, {out}, out={work})", 1)
        em.emit(f"np.subtract(1, {work}, out={work})", 1)
        em.emit(f"np.multiply({upstream}, {work}, out={grad})", 1)
        return [grad]


class SigmoidKernel(TanhKernel):
    """``stable_sigmoid(x)`` forward (its own function); ``upstream * out * (1 - out)``
    backward into buffers."""

    def forward(self):
        em, k, node = self.em, self.k, self.node
        self.out = f"v{k}"
        em.emit(f"v{k} = {em.bind(stable_sigmoid, 'f')}({self.prog.expr(node.inputs[0])})", 6)

    def backward(self, upstream, dests):
        if not self.node.needs[0]:
            return [None]
        em, node, out = self.em, self.node, self.out
        like = self.prog.value(node.inputs[0])
        scaled = em.buffer(node.shape, node.dtype, like=like)
        rest = em.buffer(node.shape, node.dtype, like=like)
        grad = dests[0] or em.buffer(node.shape, node.dtype, like=like)
        em.emit(f"np.multiply({upstream}, {out}, out={scaled})", 1)
        em.emit(f"np.subtract(1, {out}, out={rest})", 1)
        em.emit(f"np.multiply({scaled}, {rest}, out={grad})", 1)
        return [grad]


class MultiplyKernel(Generic):
    """``a * b`` of two arrays of one shape and dtype (dropout's mask, for one)."""

    @staticmethod
    def fits(prog, node):
        a, b = (prog.value(r) for r in node.inputs)
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype == node.dtype)

    def forward(self):
        em, k, node = self.em, self.k, self.node
        a, b = (self.prog.expr(r) for r in node.inputs)
        self.out = em.buffer(node.shape, node.dtype, like=self.prog.value(("node", k)))
        em.emit(f"np.multiply({a}, {b}, out={self.out})", 1)
        em.emit(f"v{k} = {self.out}")

    def backward(self, upstream, dests):
        em, node = self.em, self.node
        a, b = (self.prog.expr(r) for r in node.inputs)
        names = []
        for need, other, dest, ref in zip(node.needs, (b, a), dests, node.inputs):
            if not need:
                names.append(None)
                continue
            grad = dest or em.buffer(node.shape, node.dtype, like=self.prog.value(ref))
            em.emit(f"np.multiply({upstream}, {other}, out={grad})", 1)
            names.append(grad)
        return names


class CrossEntropyKernel(Generic):
    """Softmax cross-entropy (``ops.loss.CrossEntropy``) with reduction mean or sum."""

    @staticmethod
    def fits(prog, node):
        target = node.params.get("target")
        reduction = node.params.get("reduction", ("static", "mean"))
        logits = prog.value(node.inputs[0])
        return (target is not None and target[0] == "arg" and reduction[0] == "static"
                and reduction[1] in ("mean", "sum") and isinstance(logits, np.ndarray)
                and logits.ndim == 2)

    def forward(self):
        em, prog, node, k = self.em, self.prog, self.node, self.k
        logits = prog.expr(node.inputs[0])
        n, c = prog.value(node.inputs[0]).shape
        dtype = prog.value(node.inputs[0]).dtype
        self.target = prog.expr(node.params["target"])
        self.reduction = node.params.get("reduction", ("static", "mean"))[1]
        self.rows = em.bind(np.arange(n), "rows")
        self.n = n
        like = prog.value(node.inputs[0])  # the logits' layout, as eager's arrays have it
        top, shifted = em.buffer((n, 1), dtype), em.buffer((n, c), dtype, like=like)
        self.probs = em.buffer((n, c), dtype, "probs", like=like)
        norm_name = em.buffer(n, dtype)
        column = em.bind(em.namespace[norm_name][:, None], "b")
        log_norm, losses = em.buffer(n, dtype), em.buffer(n, dtype)
        # np.max and np.sum are Python wrappers around these reductions: same loops.
        em.emit(f"np.maximum.reduce({logits}, axis=1, keepdims=True, out={top})", 1)
        em.emit(f"np.subtract({logits}, {top}, out={shifted})", 1)
        em.emit(f"np.exp({shifted}, out={self.probs})", 1)
        em.emit(f"np.add.reduce({self.probs}, axis=1, out={norm_name})", 1)
        em.emit(f"np.divide({self.probs}, {column}, out={self.probs})", 1)
        em.emit(f"np.log({norm_name}, out={log_norm})", 1)
        em.emit(f"np.subtract({log_norm}, {shifted}[{self.rows}, {self.target}], "
                f"out={losses})", 2)
        # losses.mean() is the sum divided by the count, in the losses' dtype.
        loss = em.buffer((), dtype, "loss")
        em.emit(f"np.add.reduce({losses}, out={loss})", 1)
        if self.reduction == "mean":
            em.emit(f"np.true_divide({loss}, {n}, out={loss})", 1)
        em.emit(f"v{k} = {loss}")

    def backward(self, upstream, dests):
        em, node = self.em, self.node
        if not node.needs[0]:
            return [None]
        logits = self.prog.value(node.inputs[0])
        grad = dests[0] or em.buffer(logits.shape, logits.dtype, like=logits)
        seed = self.prog.constant(upstream)
        if seed is not None:  # the loss's own seed: its weight is a constant
            weight = em.bind(seed / self.n if self.reduction == "mean" else seed, "k")
        else:
            weight = f"w{self.k}"
            em.emit(f"{weight} = {upstream} / {self.n}" if self.reduction == "mean"
                    else f"{weight} = {upstream}", 1)
        em.emit(f"np.multiply({self.probs}, {weight}, out={grad})", 1)
        em.emit(f"{grad}[{self.rows}, {self.target}] -= {weight}", 1)
        return [grad]


def node_shape(prog, node):
    return prog.value(node.inputs[0]).shape


KERNELS = {Linear: LinearKernel, ReLU: ReLUKernel, Tanh: TanhKernel, Sigmoid: SigmoidKernel,
           Multiply: MultiplyKernel, CrossEntropy: CrossEntropyKernel}


def for_node(prog, node):
    """The kernel that replays ``node`` into fixed buffers, or None (then ``Generic``)."""
    kernel = KERNELS.get(node.fn)
    if kernel is None or not kernel.fits(prog, node):
        return None
    return kernel(prog, node)
