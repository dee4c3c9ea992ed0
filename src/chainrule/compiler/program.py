"""From a recording to a replay: one generated Python function, a flat list of NumPy calls.

``build(recording, layout)`` writes the source of ``replay(a0, a1, ...)`` (the arrays of
the step's arguments) line by line and compiles it once:

1. guards: the modules, optimizers and parameters are still the ones recorded (else the
   function returns ``MISS`` before it has changed anything, and the step is recorded
   again; modules are compared only when ``nn.module``'s structure count has moved), and
   the class labels are in range (else the error eager would raise);
2. the forward operations, each as NumPy calls writing into buffers allocated once
   (``kernels``), or, for operations without a kernel, its ``Function.forward`` itself;
3. every ``zero_grad``, as recorded;
4. each backward pass, node by node in the order the engine walks it, with the same
   gradient accumulation and the same ``.grad`` semantics as ``engine.run_backward``;
5. each optimizer step: the optimizer's own update rule run once per *bucket*, the
   parameters of a group whose data, gradients and state are views of flat arrays
   (``layout.Bucket``), so that an update is a few NumPy calls for the whole model.

Every value is computed by the same NumPy functions in the same order as eager code, so
a replay gives the same bits as an eager step.
"""

from __future__ import annotations

import numpy as np

from ..engine import ARRAY_MATH, Context, sum_to_shape
from ..errors import ChainruleError
from ..nn.module import _structure
from ..ops.loss import CrossEntropy, MultiClassHinge, class_targets
from . import kernels
from .layout import Layout

MISS = object()  # a guard failed: nothing was run, record again


class Emitter:
    """The lines of the generated function and the objects its names refer to."""

    def __init__(self):
        self.lines: list[str] = []
        self.namespace: dict[str, object] = {"np": np, "MISS": MISS}
        self._names: dict[int, str] = {}
        self.kernel_count = 0  # NumPy calls in the replay (kernels), for the overhead measure
        self.buffer_bytes = 0  # arrays allocated once for the replay

    def bind(self, obj, prefix="k") -> str:
        """A name in the generated code that refers to ``obj``."""
        name = self._names.get(id(obj))
        if name is None:
            name = f"{prefix}{len(self._names)}"
            self._names[id(obj)] = name
            self.namespace[name] = obj
        return name

    def emit(self, line: str, kernels: int = 0):
        self.lines.append("    " + line)
        self.kernel_count += kernels

    def buffer(self, shape, dtype, prefix="b", order="C", like=None) -> str:
        """A new array, row-major (``order="F"``: column-major); with ``like``, an array
        of the same shape, in its memory layout, as NumPy gives an elementwise result
        (a sum over it then adds in the same order as over eager code's array)."""
        if like is not None and np.shape(like) == tuple(np.atleast_1d(shape)):
            array = np.empty_like(like, dtype=dtype)
        else:
            array = np.empty(shape, dtype, order=order)
        self.buffer_bytes += array.nbytes
        return self.bind(array, prefix)


class Program:
    """The replay of one recording: ``run(*arrays)`` returns the output arrays or MISS."""

    def __init__(self, recording, layout: Layout, probe=False):
        self.rec, self.layout, self.probe = recording, layout, probe
        self.em = em = Emitter()
        em.namespace.update(_HELPERS)
        self.kernel_of: dict[int, object] = {}
        self.owned_outputs: set[int] = set()  # outputs in a buffer their kernel made
        self.private_grads: set[str] = set()  # gradient buffers with a single reader
        self._count_readers()
        self._plan_steps()
        self._emit_guards()
        self._emit_events()
        args = ", ".join(f"a{i}" for i in range(len(recording.arg_arrays)))
        self.source = f"def replay({args}):\n" + "\n".join(em.lines) + "\n"
        exec(compile(self.source, "<chainrule compiled step>", "exec"), em.namespace)
        self.run = em.namespace["replay"]
        self._kernel_buffer_bytes = em.buffer_bytes
        self.kernel_count = em.kernel_count
        if not probe:  # the recording's arrays (every activation of the first call) can go
            self.rec = None

    @property
    def buffer_bytes(self) -> int:
        """What the replay keeps between steps: its buffers, and the flat gradient and
        scratch arrays of its buckets (eager code allocates gradients at every step)."""
        return self._kernel_buffer_bytes + sum(b.nbytes for b in self.buckets)

    def _count_readers(self):
        """How many operations (and returned values) read each operation's output: a
        kernel may overwrite a buffer that only it reads."""
        self.readers: dict[int, int] = {}
        for node in self.rec.nodes:
            for ref in [*node.inputs, *node.params.values()]:
                if ref[0] == "node":
                    self.readers[ref[1]] = self.readers.get(ref[1], 0) + 1
        for k in self.rec.output_nodes:
            self.readers[k] = self.readers.get(k, 0) + 2

    def _plan_steps(self):
        """Plan the optimizer steps first: they decide which parameters live in flat
        arrays, which the forward kernels then read directly."""
        self.plans, self.buckets, self.optimizers = {}, [], []
        for i, event in enumerate(self.rec.events):
            if event[0] == "step":
                plan = self.plans[i] = self.layout.plan_step(event[1], event[2])
                for bucket in plan[0] if plan else ():
                    if all(bucket is not b for b in self.buckets):
                        self.buckets.append(bucket)
            if event[0] in ("step", "zero_grad") and hasattr(event[1], "param_groups"):
                if all(event[1] is not o for o in self.optimizers):
                    self.optimizers.append(event[1])

    def _emit_events(self):
        em, rec = self.em, self.rec
        for i, (_, arg, dtype) in sorted(rec.casts.items()):
            em.emit(f"c{i} = a{arg}.astype({em.bind(dtype)})", 1)
        for i, event in enumerate(rec.events):
            kind = event[0]
            if kind == "node":
                self._forward(rec.nodes[event[1]])
            elif kind == "random":
                fn, args = rec.randoms[event[1]]
                em.emit(f"r{event[1]} = {em.bind(fn, 'f')}(*{em.bind(args, 'k')})", 3)
            elif kind == "zero_grad":
                em.emit(f"{em.bind(event[1], 'opt')}.zero_grad({event[2]!r})")
            elif kind == "backward":
                self._backward(*event[1:])
            elif kind == "step":
                self._step(event[1], self.plans[i])
        outputs = ", ".join(self.expr(("node", k)) for k in rec.output_nodes)
        em.emit(f"return ({outputs}{',' if rec.output_nodes else ''})")

    # ----- references -------------------------------------------------------------------------
    def expr(self, ref) -> str:
        kind = ref[0]
        if kind == "arg":
            return f"a{ref[1]}"
        if kind == "node":
            return f"v{ref[1]}"
        if kind == "random":
            return f"r{ref[1]}"
        if kind == "leaf":
            return self.leaf_data(ref[1])
        if kind == "const":
            if ref[1] in self.rec.casts:
                return f"c{ref[1]}"
            return self.em.bind(self.rec.consts[ref[1]], "c_")
        return self.em.bind(ref[1], "s")  # a static Python value

    def owns_alone(self, ref, node) -> bool:
        """Whether ``node`` is the only reader of the buffer ``ref`` names."""
        return (ref[0] == "node" and ref[1] in self.owned_outputs
                and self.readers.get(ref[1]) == 1 and node.inputs.count(ref) == 1)

    def constant(self, name):
        """The read-only array a generated name stands for (a backward seed), or None."""
        value = self.em.namespace.get(name)
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            return value
        return None

    def leaf_data(self, j) -> str:
        bucket_view = self.layout.data_view(self.rec.leaves[j])
        if bucket_view is not None:  # guarded to be p.data: no attribute read per use
            return self.em.bind(bucket_view, "w")
        return f"{self.em.bind(self.rec.leaves[j], 'p')}.data"

    def value(self, ref):
        """The recorded array behind a reference (its shape and dtype are fixed)."""
        kind = ref[0]
        if kind == "node":
            return self.rec.values[ref[1]]
        if kind == "leaf":
            return self.rec.leaves[ref[1]].data
        if kind == "arg":
            return self.rec.arg_arrays[ref[1]]
        if kind == "random":
            return self.rec.random_values[ref[1]]
        if kind == "const":
            return self.rec.consts[ref[1]]
        return ref[1]

    # ----- guards -----------------------------------------------------------------------------
    def _emit_guards(self):
        em, rec = self.em, self.rec
        modules = [f"_module_same({em.bind(module, 'm')}, "
                   f"{em.bind(_module_signature(module), 'g')})"
                   for module in rec.modules.values()]
        if modules:
            # Modules change only through what bumps nn.module's structure count: they
            # are compared again only when it moved since they last passed.
            seen = em.bind([None], "seen")
            em.emit(f"if {seen}[0] != _structure[0]:")
            em.emit("    if not (" + "\n                and ".join(modules) + "):")
            em.emit("        return MISS")
            em.emit(f"    {seen}[0] = _structure[0]")
        checks = []
        if rec.leaves:
            leaves = tuple((leaf, flag, leaf.data.shape, leaf.data.dtype, leaf.data.strides,
                            self.layout.data_view(leaf))
                           for leaf, flag in zip(rec.leaves, rec.leaf_flags))
            checks.append(f"_leaves_same({em.bind(leaves, 'g')})")
        for opt in self.optimizers:
            checks.append(f"_optimizer_same({em.bind(opt, 'opt')}, "
                          f"{em.bind(_optimizer_signature(opt), 'g')})")
        for bucket in self.buckets:
            checks.append(f"{em.bind(bucket, 'B')}.intact()")
        if checks:
            em.emit("if not (" + "\n            and ".join(checks) + "):")
            em.emit("    return MISS")
        for node in rec.nodes:  # labels out of range raise, as eager does
            if node.fn in (CrossEntropy, MultiClassHinge):
                target = node.params.get("target")
                if target is not None and target[0] == "arg":
                    labels = self.value(target)
                    unsigned = em.bind(np.dtype(labels.dtype.str.replace("i", "u")), "k")
                    em.emit(f"_check_labels({self.expr(target)}, {unsigned}, "
                            f"{self.value(node.inputs[0]).shape[1]}, "
                            f"{node.fn.name!r})", 1)

    # ----- forward ----------------------------------------------------------------------------
    def _forward(self, node):
        kernel = kernels.for_node(self, node)
        if kernel is None:
            kernel = kernels.Generic(self, node)
        self.kernel_of[node.index] = kernel
        kernel.forward()
        if self.probe:
            self.em.emit(f"_probe({node.index}, v{node.index})")

    # ----- backward ---------------------------------------------------------------------------
    def _backward(self, roots, seeds, order):
        em = self.em
        # How many gradients each tensor receives in this pass: a parameter that receives
        # one gets it written straight into its slot of the flat gradient array.
        arrivals: dict[tuple, int] = {}
        for ref in order:
            if ref[0] == "node":
                node = self.rec.nodes[ref[1]]
                for parent, need in zip(node.inputs, node.needs):
                    if need:
                        arrivals[parent] = arrivals.get(parent, 0) + 1
        for j, leaf in enumerate(self.rec.leaves):
            grad_view = self.layout.grad_view(leaf)
            if grad_view is not None and ("leaf", j) in order:
                # The last replay's gradient may still be .grad (no zero_grad since): keep
                # it, as this pass is about to write into that array.
                p, g = em.bind(leaf, "p"), em.bind(grad_view, "G")
                em.emit(f"if {p}.grad is {g}: {p}.grad = {g}.copy(order='K')")
        grads: dict[tuple, str] = {}
        for root, seed in zip(roots, seeds):
            if root[0] in ("node", "leaf"):
                self._arrive(grads, root, self.expr(seed))
        for ref in reversed(order):
            upstream = grads.pop(ref, None)
            if upstream is None:
                continue
            if ref[0] == "leaf":
                self._store(ref[1], upstream)
                continue
            node = self.rec.nodes[ref[1]]
            dests = []
            for parent, need in zip(node.inputs, node.needs):
                dest = None
                if need and parent[0] == "leaf" and arrivals.get(parent) == 1:
                    view = self.layout.grad_view(self.rec.leaves[parent[1]])
                    dest = None if view is None else em.bind(view, "G")
                dests.append(dest)
            downstream = self.kernel_of[node.index].backward(upstream, dests)
            for parent, need, d in zip(node.inputs, node.needs, downstream):
                if need and d is not None:
                    self._arrive(grads, parent, d)

    def _arrive(self, grads, ref, expr):
        previous = grads.get(ref)
        if previous is None:
            grads[ref] = expr
        else:  # gradients add where a tensor feeds several operations
            name = f"acc{len(self.em.lines)}"
            self.em.emit(f"{name} = {previous} + {expr}", 1)
            grads[ref] = name

    def _store(self, j, grad):
        em, leaf = self.em, self.rec.leaves[j]
        p = em.bind(leaf, "p")
        view = self.layout.grad_view(leaf)
        if view is None:
            em.emit(f"_store_grad({p}, {grad})")
            return
        g = em.bind(view, "G")
        if grad != g:
            em.emit(f"np.copyto({g}, {grad})", 1)
        em.emit(f"if {p}.grad is None: {p}.grad = {g}")
        em.emit(f"else: _add_grad({p}, {g})")

    # ----- optimizer ---------------------------------------------------------------------------
    def _step(self, opt, plan):
        em = self.em
        o = em.bind(opt, "opt")
        if plan is None:  # an optimizer the compiler does not fuse: its own step()
            em.emit(f"{o}.step()")
            return
        buckets, singles, idle = plan
        ready = [f"{em.bind(b, 'B')}.ready()" for b in buckets]
        if idle:
            ready.append(f"_no_grads({em.bind(tuple(idle), 'k')})")
        if singles:
            ready.append(f"_have_grads({em.bind(tuple(p for p, _ in singles), 'k')})")
        em.emit("if " + " and ".join(ready or ["True"]) + ":")
        for b in buckets:
            em.emit(f"    {em.bind(b, 'B')}.update()", b.kernel_count)
        for p, group in singles:
            em.emit(f"    _update_one({o}, {em.bind(p, 'p')}, {em.bind(group, 'grp')})")
        em.emit("else:")
        em.emit(f"    {o}.step()")


# ----- signatures the guards compare --------------------------------------------------------------
def _module_signature(module):
    params = tuple(module._parameters.values())
    extra = (module.p, module.generator) if hasattr(module, "generator") else ()
    return (module.training, params, len(module._modules), extra)


def _module_same(module, signature):
    training, params, n_modules, extra = signature
    if (module.training is not training or len(module._modules) != n_modules
            or module._forward_hooks):
        return False
    current = module._parameters
    if len(current) != len(params):
        return False
    for a, b in zip(current.values(), params):
        if a is not b:
            return False
    if extra and (module.p != extra[0] or module.generator is not extra[1]):
        return False
    return True


def _leaves_same(leaves):
    """Parameters are still trainable (or frozen) as recorded, with arrays of the recorded
    shape, dtype and memory layout (which decides the BLAS call of a Linear's weight
    gradient; for those in flat arrays: still the very views)."""
    for leaf, requires_grad, shape, dtype, strides, view in leaves:
        if leaf.requires_grad is not requires_grad:
            return False
        data = leaf.data
        if view is not None:
            if data is not view:
                return False
        elif data.shape != shape or data.dtype != dtype or data.strides != strides:
            return False
    return True


def _group_settings(group):
    # The learning rate is read at every replay (schedulers change it); every other
    # setting changed means the step is recorded again.
    return tuple((k, v) for k, v in group.items() if k not in ("params", "lr"))


def _same_settings(group, settings):
    if len(group) != len(settings) + 2:  # + "params" and "lr"
        return False
    for key, value in settings:
        if key not in group:
            return False
        current = group[key]
        if current is not value and current != value:
            return False
    return True


def _optimizer_signature(opt):
    groups = tuple((g, tuple(g["params"]), _group_settings(g)) for g in opt.param_groups)
    return (opt.state, groups)


def _optimizer_same(opt, signature):
    state, groups = signature
    if opt.state is not state or len(opt.param_groups) != len(groups):
        return False
    for group, (recorded, params, settings) in zip(opt.param_groups, groups):
        if group is not recorded:
            return False
        current = group["params"]
        if len(current) != len(params):
            return False
        for a, b in zip(current, params):
            if a is not b:
                return False
        if not _same_settings(group, settings):
            return False
    return True


# ----- helpers the generated code calls -----------------------------------------------------------
def _fit(d, like, op):
    """A downstream gradient made to match its input, as ``engine.run_backward`` does."""
    if d is None:
        raise ChainruleError(f"compiled step: the backward rule of {op} returned no gradient "
                             "for an input that needs one; run the step without compile")
    shape = np.shape(like)
    if d.shape != shape:
        d = sum_to_shape(d, shape)
    dtype = like.dtype
    if d.dtype is not dtype and d.dtype != dtype:
        d = d.astype(dtype)
    return d


def _as_array(x):
    return x if type(x) is np.ndarray else np.asarray(x)


def _store_grad(t, g):
    """``.grad`` as ``engine._store_grad`` leaves it (a copy: ``g`` may be a buffer)."""
    if t.grad is None:
        t.grad = np.array(g, dtype=t.dtype, copy=True)
    else:
        _add_grad(t, g)


def _add_grad(t, g):
    if isinstance(t.grad, np.ndarray) and t.grad.flags.writeable:
        t.grad += g
    else:
        t.grad = t.grad + g


def _no_grads(params):
    for p in params:
        if p.grad is not None:
            return False
    return True


def _have_grads(params):
    for p in params:
        if p.grad is None:
            return False
    return True


def _update_one(opt, p, group):
    """One parameter's update, as ``Optimizer.step`` does it."""
    grad = np.asarray(getattr(p.grad, "data", p.grad))
    opt._update(p.data, grad, opt.state[p], group, opt._work(p))


def _check_labels(labels, unsigned, classes, op):
    """Raise eager's error for labels outside [0, classes) (negatives look huge unsigned)."""
    if labels.size and labels.view(unsigned).max() >= classes:
        class_targets((len(labels), classes), labels, op)  # raises eager's error


def _generic_context(fn, inputs, out, needs):
    ctx = Context()
    ctx.fn, ctx.inputs, ctx.out, ctx.needs_input_grad = fn, inputs, out, needs
    ctx.xp, ctx.released = ARRAY_MATH, False
    return ctx


_HELPERS = {
    "_fit": _fit, "_as_array": _as_array, "_store_grad": _store_grad, "_add_grad": _add_grad,
    "_no_grads": _no_grads, "_have_grads": _have_grads, "_update_one": _update_one,
    "_check_labels": _check_labels, "_module_same": _module_same, "_leaves_same": _leaves_same,
    "_optimizer_same": _optimizer_same, "Context": Context, "ARRAY_MATH": ARRAY_MATH,
    "_structure": _structure,
}
