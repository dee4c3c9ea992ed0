"""Programs: random expression graphs, run through chainrule and a reference.

A *program* is a list of nodes: leaves (float64 arrays, some of them non-contiguous views)
and steps (one operation on earlier nodes, with its parameters).

``check(program)`` runs the program and compares the output's value, the gradients of
<upstream, output> with respect to every leaf and the gradients of <v, those gradients>
(second derivatives) with PyTorch in float64 where torch is importable, and with centered
differences where it is not; it returns None or a message. ``shrink`` reduces a failing
program to a smaller one that still fails, and ``reproducer`` prints it as a script.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from torch_reference import torch

import chainrule as cr
from chainrule.autograd import grad
from chainrule.gradcheck import numerical_grad

from .calls import CALLS

MARGIN = 0.02  # how far an operand stays from a kink of the operation
LARGEST = 1e4  # a step whose values grow beyond this is drawn again
MAX_SIZE = 48  # elements per node
STEP = 1e-6  # of the centered differences
TORCH_TOL = dict(rtol=1e-7, atol=1e-9)
NUMERICAL_TOL = dict(rtol=1e-4, atol=1e-5)


# ----- programs -------------------------------------------------------------------------------
@dataclass
class Leaf:
    """An input array; ``layout`` says how the array the operations see is a view of
    ``base`` ("" itself, "T" transposed, "step" every second row, "neg" rows reversed)."""

    base: np.ndarray
    layout: str = ""

    def view(self, base=None):
        base = self.base if base is None else base
        if self.layout == "T":
            return base.T
        if self.layout == "step":
            return base[::2]
        if self.layout == "neg":
            return base[::-1]
        return base


@dataclass
class Step:
    op: str
    args: tuple  # node numbers
    params: dict = field(default_factory=dict)


@dataclass
class Program:
    nodes: list
    output: int
    seed: object = None

    def leaves(self):
        return [i for i, n in enumerate(self.nodes) if isinstance(n, Leaf)]

    def ancestors(self, node=None):
        """The nodes ``node`` (default: the output) is computed from, itself included."""
        todo, seen = [self.output if node is None else node], set()
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                if isinstance(self.nodes[i], Step):
                    todo.extend(self.nodes[i].args)
        return seen

    def pruned(self):
        """Only the nodes the output needs, renumbered."""
        keep = sorted(self.ancestors())
        number = {old: new for new, old in enumerate(keep)}
        nodes = []
        for old in keep:
            n = self.nodes[old]
            if isinstance(n, Step):
                n = replace(n, args=tuple(number[a] for a in n.args))
            nodes.append(n)
        return Program(nodes, number[self.output], self.seed)


def weights(shape, salt):
    """The fixed upstream gradient for an output (or leaf) of ``shape``."""
    return np.random.default_rng([salt, *shape]).standard_normal(shape)


def finite(v):
    return bool(np.all(np.isfinite(v)))


# ----- running and checking -------------------------------------------------------------------
def run_step(step, args, library):
    _, ours, theirs = CALLS[step.op]
    return (ours if library == "chainrule" else theirs)(*args, **step.params)


def evaluate(program, library, bases=None):
    """Run ``program`` through ``"chainrule"`` or ``"torch"``: the output's value, the
    gradients of <upstream, output> for every leaf and the gradients of
    sum_i <v_i, gradient_i> (second derivatives). ``bases`` replaces the leaves' arrays."""
    nodes, leaves = [], []
    for i, node in enumerate(program.nodes):
        if isinstance(node, Leaf):
            base = node.base if bases is None else bases[i]
            if library == "chainrule":
                t = cr.Tensor(base, requires_grad=True)
                t.data = node.view(t.data)  # the operations see the (non-contiguous) view
            else:
                t = torch.tensor(node.view(base).copy(), requires_grad=True)
            leaves.append(t)
            nodes.append(t)
        else:
            nodes.append(run_step(node, [nodes[a] for a in node.args], library))
    out = nodes[program.output]
    shape = tuple(out.shape)
    upstream = weights(shape, 0)
    vs = [weights(tuple(t.shape), 1 + k) for k, t in enumerate(leaves)]
    if library == "chainrule":
        first = grad(out, leaves, grad_outputs=upstream, create_graph=True, allow_unused=True)
        recorded = [g for g in first if g is not None and g.requires_grad]
        second = [None] * len(leaves)
        if recorded:
            s = cr.sum(cr.stack([(g * v).sum() for g, v in zip(first, vs)
                                 if g is not None and g.requires_grad]))
            second = grad(s, leaves, allow_unused=True)
        arrays = lambda gs: [np.zeros(t.shape) if g is None else np.array(g.data)  # noqa: E731
                             for g, t in zip(gs, leaves)]
        bases = bases or {i: n.base for i, n in enumerate(program.nodes) if isinstance(n, Leaf)}
        plain, twice = plain_gradients(program, bases, upstream, twice=True)
        return {"value": np.array(out.data), "grad": arrays(first), "second": arrays(second),
                "plain": plain, "twice": twice}
    first = torch.autograd.grad(out, leaves, torch.as_tensor(upstream), create_graph=True,
                                allow_unused=True)
    terms = [(g * torch.as_tensor(v)).sum() for g, v in zip(first, vs)
             if g is not None and g.requires_grad]
    second = [None] * len(leaves)
    if terms:
        second = torch.autograd.grad(torch.stack(terms).sum(), leaves, allow_unused=True)
    arrays = lambda gs: [np.zeros(tuple(t.shape)) if g is None else _numpy(g)  # noqa: E731
                         for g, t in zip(gs, leaves)]
    return {"value": _numpy(out), "grad": arrays(first),
            "second": arrays(second)}


def _numpy(t):
    # PyTorch 2.13 gives some second derivatives as a "ZeroTensor" (all zeros, no
    # memory), which numpy() refuses and numpy(force=True) crashes on.
    if t._is_zerotensor():
        return np.zeros(tuple(t.shape))
    return t.detach().numpy().copy()


def numerical(program, ours):
    """The centered-difference counterparts of chainrule's gradients and second
    derivatives (the value itself has no reference here)."""
    leaf_ids = program.leaves()
    bases = {i: program.nodes[i].base.copy() for i in leaf_ids}
    upstream = weights(ours["value"].shape, 0)

    def output(_):
        with cr.no_grad():
            return evaluate_forward(program, bases)

    def gradient_sum(_):
        grads = plain_gradients(program, bases, upstream)
        return sum(float((g * weights(g.shape, 1 + k)).sum()) for k, g in enumerate(grads))

    result = {"grad": [], "second": []}
    for i in leaf_ids:
        view = program.nodes[i].view(bases[i])
        result["grad"].append(numerical_grad(output, view, h=STEP, upstream=upstream))
        result["second"].append(numerical_grad(gradient_sum, view, h=STEP))
    return result


def evaluate_forward(program, bases):
    nodes = []
    for i, node in enumerate(program.nodes):
        if isinstance(node, Leaf):
            nodes.append(cr.Tensor._wrap(node.view(bases[i])))
        else:
            nodes.append(run_step(node, [nodes[a] for a in node.args], "chainrule"))
    return nodes[program.output]


def plain_gradients(program, bases, upstream, twice=False):
    """chainrule's first gradients as ``backward()`` leaves them in each leaf's ``.grad``
    (plain arrays, buffers added into in place); with ``twice``, also the ``.grad`` after
    a second ``backward()``, which must have added up to twice the first."""
    nodes, leaves = [], []
    for i, node in enumerate(program.nodes):
        if isinstance(node, Leaf):
            t = cr.Tensor(bases[i], requires_grad=True)
            t.data = node.view(t.data)
            leaves.append(t)
            nodes.append(t)
        else:
            nodes.append(run_step(node, [nodes[a] for a in node.args], "chainrule"))
    out = nodes[program.output]
    out.backward(upstream, retain_graph=twice)
    grads = [np.zeros(t.shape) if t.grad is None else t.grad.copy() for t in leaves]
    if not twice:
        return grads
    out.backward(upstream)
    return grads, [np.zeros(t.shape) if t.grad is None else t.grad for t in leaves]


def _compare(what, ours, theirs, tol, source, finite_only=False):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if finite_only and ours.shape == theirs.shape:
        # A NaN or inf upstream gradient (the output was not finite): where it meets a
        # closed gate chainrule multiplies by 0 and keeps the NaN where PyTorch selects 0,
        # and inf - inf comes out NaN or not depending on how each library groups the
        # products (see "Differences from PyTorch"). Elements finite in both must agree.
        both = np.isfinite(ours) & np.isfinite(theirs)
        ours, theirs = np.where(both, ours, 0.0), np.where(both, theirs, 0.0)
    if ours.shape != theirs.shape:
        return f"{what}: chainrule's shape {ours.shape}, {source}'s {theirs.shape}"
    if ours.dtype != np.float64:
        return f"{what}: chainrule gave dtype {ours.dtype}, not float64"
    scale = float(np.max(np.abs(theirs[np.isfinite(theirs)]), initial=1.0))
    close = np.isclose(ours, theirs, rtol=tol["rtol"], atol=tol["atol"] * scale, equal_nan=True)
    if not np.all(close):
        at = tuple(int(i) for i in np.argwhere(~close)[0])
        return (f"{what}: chainrule gives {ours[at]!r} but {source} {theirs[at]!r} at {at} "
                f"(rtol {tol['rtol']}, atol {tol['atol']} x {scale:.3g})")
    return None


def check(program, use_torch=None):
    """None if chainrule agrees with the reference on ``program``; else what differs."""
    use_torch = torch is not None if use_torch is None else use_torch
    source = f"PyTorch {torch.__version__}" if use_torch else "centered differences"
    theirs = None
    if use_torch:
        try:
            with warnings.catch_warnings():  # e.g. var() with ddof >= n, NaN as expected
                warnings.simplefilter("ignore")
                theirs = evaluate(program, "torch")
        except Exception as e:  # noqa: BLE001 - a refusal is compared, not raised
            theirs = e
    try:
        with np.errstate(all="ignore"):
            ours = evaluate(program, "chainrule")
    except Exception as e:  # noqa: BLE001
        if isinstance(theirs, Exception):
            return f"both refuse the program (a generator bug): chainrule {e!r}; {theirs!r}"
        return f"chainrule raises {type(e).__name__}: {e}" + (
            "" if theirs is None else f"; {source} computes it")
    if isinstance(theirs, Exception):
        return f"{source} raises {type(theirs).__name__}: {theirs}; chainrule computes it"
    if theirs is None:
        if not finite(ours["value"]):
            return None  # centered differences of NaN or inf say nothing
        theirs = numerical(program, ours)
        tol = NUMERICAL_TOL
    else:
        tol = TORCH_TOL
        found = _compare("value", ours["value"], theirs["value"], tol, source)
        if found:
            return found
    leaves = program.leaves()
    for kind, label, reference in (("grad", "gradient", "grad"),
                                   ("plain", "gradient by backward()", "grad"),
                                   ("second", "second derivative", "second")):
        for k, (a, b) in enumerate(zip(ours[kind], theirs[reference])):
            found = _compare(f"{label} of leaf x{leaves[k]}", a, b, tol, source,
                             finite_only=not finite(ours["value"]))
            if found:
                return found
    for k, (once, twice) in enumerate(zip(ours["plain"], ours["twice"])):
        if not np.allclose(twice, 2 * once, rtol=1e-12, atol=0, equal_nan=True):
            return (f"leaf x{leaves[k]}: the .grad of two backward() calls is not twice "
                    "that of one: gradients did not add up")
    return None


# ----- shrinking and printing failures --------------------------------------------------------
def shrink(program, fails, budget=200):
    """A smaller program for which ``fails(program)`` still gives a message of the same
    kind (a smaller program failing for another reason, say an operand rounded onto a
    kink, is not taken).

    First the smallest earlier node that fails as the output; then, node by node, an
    intermediate node replaced by a leaf holding its value (cutting off the graph behind
    it); then non-contiguous leaves made contiguous; then the leaves' values rounded."""
    calls, kind = 0, failure_kind(fails(program))

    def still(p):
        nonlocal calls
        calls += 1
        return calls <= budget and failure_kind(fails(p)) == kind

    by_size = sorted((i for i, n in enumerate(program.nodes) if isinstance(n, Step)),
                     key=lambda i: len(program.ancestors(i)))
    for i in by_size:
        if i == program.output:
            break
        candidate = Program(program.nodes, i, program.seed).pruned()
        if still(candidate):
            program = candidate
            break
    changed = True
    while changed:
        changed = False
        values = _chainrule_values(program)
        for i, n in enumerate(program.nodes):
            if isinstance(n, Step) and i != program.output and values[i] is not None:
                nodes = list(program.nodes)
                nodes[i] = Leaf(np.array(values[i]))
                candidate = Program(nodes, program.output, program.seed).pruned()
                if still(candidate):
                    program, changed = candidate, True
                    break
    for i, n in enumerate(program.nodes):
        if isinstance(n, Leaf) and n.layout:
            nodes = list(program.nodes)
            nodes[i] = Leaf(np.ascontiguousarray(n.view()))
            candidate = Program(nodes, program.output, program.seed)
            if still(candidate):
                program = candidate
    for decimals in (1, 2):  # values a reader takes in at a glance, if they still fail
        nodes = [Leaf(np.round(n.base, decimals), n.layout) if isinstance(n, Leaf) else n
                 for n in program.nodes]
        candidate = Program(nodes, program.output, program.seed)
        if still(candidate):
            return candidate
    return program


def failure_kind(message):
    """What a message of ``check`` is about, without the numbers and node names:
    "gradient", "second derivative", "chainrule raises ShapeError", ..."""
    if message is None:
        return None
    found = re.match(r"(value|gradient by backward\(\)|gradient|second derivative"
                     r"|.* raises \w+|both refuse|leaf x\d+: the .grad)", message)
    return re.sub(r"x\d+", "x", found.group(1)) if found else message


def _chainrule_values(program):
    values = []
    with cr.no_grad(), np.errstate(all="ignore"):
        for node in program.nodes:
            if isinstance(node, Leaf):
                values.append(node.view())
                continue
            try:
                args = [cr.Tensor._wrap(values[a]) for a in node.args]
                values.append(run_step(node, args, "chainrule").data)
            except Exception:  # noqa: BLE001
                values.append(None)
    return values


def _code(value):
    """Python source that evaluates to ``value`` (arrays, index tuples, slices, numbers)."""
    if isinstance(value, np.ndarray) and value.size == 0:
        return f"np.zeros({value.shape}, dtype={value.dtype.name})"
    if isinstance(value, tuple):
        return "(" + "".join(f"{_code(v)}, " for v in value) + ")"
    return repr(value)


def reproducer(program):
    """The program as a script a reader can run (chainrule's side)."""
    lines = ["import numpy as np", "from numpy import array, dtype, float64, int64",
             "import chainrule as cr", "from chainrule.ops.shape import IndexAdd", "",
             "def scalar(op):  # a Python number on one side of a binary operation",
             "    return lambda x, scalar, scalar_first: (op(scalar, x) if scalar_first",
             "                                            else op(x, scalar))", "",
             "def join(op):  # concatenate or stack, called with the tensors one by one",
             "    return lambda *xs, axis: op(xs, axis=axis)", "",
             "def where(a, b, condition):  # the condition is a constant, not a node",
             "    return cr.where(condition, a, b)", "",
             "def activation(x, name):  # an activation module, made with its defaults",
             "    return cr.nn.ACTIVATIONS[name]()(x)", "",
             "def expand(x, sizes):  # PyTorch's expand, sizes as a tuple",
             "    return cr.expand(x, *sizes)", ""]
    with np.printoptions(precision=17, threshold=10**6, linewidth=10**6):
        for i, node in enumerate(program.nodes):
            if isinstance(node, Leaf):
                lines.append(f"x{i} = cr.tensor({_code(node.base)}, requires_grad=True)")
                if node.layout:
                    view = {"T": ".T", "step": "[::2]", "neg": "[::-1]"}[node.layout]
                    lines.append(f"x{i}.data = x{i}.data{view}  # non-contiguous")
                continue
            args = [f"x{a}" for a in node.args]
            args += [f"{k}={_code(v)}" for k, v in node.params.items()]
            lines.append(f"x{i} = {CALLS[node.op][0]}({', '.join(args)})")
    out = f"x{program.output}"
    leaves = ", ".join(f"x{i}" for i in program.leaves())
    lines += [f"out = {out}", "upstream = np.random.default_rng([0, *out.shape])"
              ".standard_normal(out.shape)",
              f"grads = cr.autograd.grad(out, [{leaves}], grad_outputs=upstream, "
              "create_graph=True, allow_unused=True)",
              "print(out, grads)"]
    return "\n".join(lines)
