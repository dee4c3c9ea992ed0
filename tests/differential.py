"""Random expression graphs for differential testing, run through chainrule and a reference.

A *program* is a list of nodes: leaves (float64 arrays, some of them non-contiguous views)
and steps (one operation on earlier nodes, with its parameters). ``generate(seed)`` draws
one from a seeded generator: every differentiable operation of ``chainrule.engine.OPERATIONS``
and the composite functions of ``chainrule.nn.functional``, with nodes reused, operands that
broadcast, 0-d, size-1 and empty axes, repeated integer indices. While it draws, it runs
each step through chainrule, so that it can keep every operand off the kinks of the
operation (|x| > MARGIN for relu, no near-ties for max) and inside its domain (log of
positive numbers).

``check(program)`` runs the program and compares the output's value, the gradients of
<upstream, output> with respect to every leaf and the gradients of <v, those gradients>
(second derivatives) with PyTorch in float64 where torch is importable, and with centered
differences where it is not; it returns None or a message. ``shrink`` reduces a failing
program to a smaller one that still fails, and ``reproducer`` prints it as a script.

The semantic differences are mapped on PyTorch's side: ``ddof`` is ``correction``, ``max``
over axes is ``amax``, NumPy's ``axis=()`` (reduce nothing) is a reduction over a new
axis of length 1, the multiclass hinge loss is PyTorch's ``multi_margin_loss`` times C
(written out so that its second derivative exists), a clip whose bounds broadcast the
input to a larger shape clamps the input broadcast first.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from torch_reference import torch

import chainrule as cr
from chainrule.autograd import grad
from chainrule.errors import ChainruleError
from chainrule.gradcheck import numerical_grad
from chainrule.ops.shape import IndexAdd

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


# ----- the operations: how to call each library ------------------------------------------------
def _t(a):
    return torch.as_tensor(np.asarray(a))


def _torch_axes(x, axis):
    """``axis`` as PyTorch's ``dim``: a tuple of axes, or None to mean NumPy's axis=()."""
    ndim = x.dim()
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = tuple(sorted({a % ndim for a in axes})) if ndim else ()
    return axes or None


def _torch_reduce(fn, x, axis, keepdims, **kw):
    axes = _torch_axes(x, axis)
    if axes is None:  # NumPy reduces nothing; reduce a new axis of length 1 instead
        return fn(x.unsqueeze(-1), dim=-1, keepdim=False, **kw)
    return fn(x, dim=axes, keepdim=keepdims, **kw)


def _torch_clip(x, min=None, max=None):  # noqa: A002 - np.clip's names
    low, high = min, max
    bounds = [b for b in (low, high) if b is not None]
    if not bounds:  # torch.clamp needs a bound; np.clip (and chainrule) return the input
        return x * 1
    shape = np.broadcast_shapes(tuple(x.shape), *(np.shape(b) for b in bounds))
    as_t = (lambda b: None if b is None else _t(b)) if any(
        isinstance(b, np.ndarray) for b in bounds) else (lambda b: b)
    return torch.clamp(x.expand(shape), as_t(low), as_t(high))


def _torch_index(index):
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    return _t(index) if isinstance(index, np.ndarray) else index


def _torch_hinge(scores, target, margin, reduction):
    # multi_margin_loss * C, written out: sum_{j != y} max(0, s_j - s_y + margin)
    t = _t(target)
    correct = scores.gather(1, t[:, None])
    others = 1 - torch.nn.functional.one_hot(t, scores.shape[1]).to(scores.dtype)
    losses = (torch.clamp(scores - correct + margin, min=0) * others).sum(dim=1)
    return _torch_reduction(losses, reduction)


def _torch_reduction(losses, reduction):
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


def _torch_index_add(values, shape, index):
    return torch.zeros(shape, dtype=values.dtype).index_put(
        (_t(index),), values, accumulate=True)


def _torch_scalar(op):
    def run(x, scalar, scalar_first):
        return op(scalar, x) if scalar_first else op(x, scalar)
    return run


def _cr_scalar(op):
    def run(x, scalar, scalar_first):
        return op(scalar, x) if scalar_first else op(x, scalar)
    return run


def _F():
    return torch.nn.functional


# name: (chainrule's call as the reproducer prints it, chainrule's function, PyTorch's)
CALLS = {
    "negative": ("cr.negative", cr.negative, lambda x: -x),
    "exp": ("cr.exp", cr.exp, lambda x: torch.exp(x)),
    "log": ("cr.log", cr.log, lambda x: torch.log(x)),
    "log1p": ("cr.log1p", cr.log1p, lambda x: torch.log1p(x)),
    "sqrt": ("cr.sqrt", cr.sqrt, lambda x: torch.sqrt(x)),
    "abs": ("cr.abs", cr.abs, lambda x: torch.abs(x)),
    "tanh": ("cr.nn.functional.tanh", cr.nn.functional.tanh, lambda x: torch.tanh(x)),
    "sigmoid": ("cr.nn.functional.sigmoid", cr.nn.functional.sigmoid,
                lambda x: torch.sigmoid(x)),
    "relu": ("cr.nn.functional.relu", cr.nn.functional.relu, lambda x: torch.relu(x)),
    "leaky_relu": ("cr.nn.functional.leaky_relu", cr.nn.functional.leaky_relu,
                   lambda x, negative_slope: _F().leaky_relu(x, negative_slope)),
    "elu": ("cr.nn.functional.elu", cr.nn.functional.elu,
            lambda x, alpha: _F().elu(x, alpha)),
    "softplus": ("cr.nn.functional.softplus", cr.nn.functional.softplus,
                 lambda x, beta: _F().softplus(x, beta)),
    "normal_cdf": ("cr.ops.normal_cdf", cr.ops.normal_cdf, lambda x: torch.special.ndtr(x)),
    "gelu": ("cr.nn.functional.gelu", cr.nn.functional.gelu,
             lambda x, approximate: _F().gelu(x, approximate=approximate)),
    "silu": ("cr.nn.functional.silu", cr.nn.functional.silu, lambda x: _F().silu(x)),
    "astype": ("cr.astype", cr.astype, lambda x, dtype: x.to(torch.float64)),
    "add": ("cr.add", cr.add, lambda a, b: a + b),
    "subtract": ("cr.subtract", cr.subtract, lambda a, b: a - b),
    "multiply": ("cr.multiply", cr.multiply, lambda a, b: a * b),
    "divide": ("cr.divide", cr.divide, lambda a, b: a / b),
    "power": ("cr.power", cr.power, lambda a, b: torch.pow(a, b)),
    "maximum": ("cr.maximum", cr.maximum, lambda a, b: torch.maximum(a, b)),
    "minimum": ("cr.minimum", cr.minimum, lambda a, b: torch.minimum(a, b)),
    "scalar_add": ("scalar(cr.add)", _cr_scalar(cr.add), _torch_scalar(lambda a, b: a + b)),
    "scalar_subtract": ("scalar(cr.subtract)", _cr_scalar(cr.subtract),
                        _torch_scalar(lambda a, b: a - b)),
    "scalar_multiply": ("scalar(cr.multiply)", _cr_scalar(cr.multiply),
                        _torch_scalar(lambda a, b: a * b)),
    "scalar_divide": ("scalar(cr.divide)", _cr_scalar(cr.divide),
                      _torch_scalar(lambda a, b: a / b)),
    "scalar_power": ("scalar(cr.power)", _cr_scalar(cr.power),
                     _torch_scalar(lambda a, b: a ** b)),
    "where": ("where", lambda a, b, condition: cr.where(condition, a, b),
              lambda a, b, condition: torch.where(_t(condition), a, b)),
    "clip": ("cr.clip", cr.clip, _torch_clip),
    "sum": ("cr.sum", cr.sum, lambda x, axis, keepdims: _torch_reduce(
        torch.sum, x, axis, keepdims)),
    "mean": ("cr.mean", cr.mean, lambda x, axis, keepdims: _torch_reduce(
        torch.mean, x, axis, keepdims)),
    "max": ("cr.max", cr.max, lambda x, axis, keepdims: _torch_reduce(
        torch.amax, x, axis, keepdims)),
    "min": ("cr.min", cr.min, lambda x, axis, keepdims: _torch_reduce(
        torch.amin, x, axis, keepdims)),
    "var": ("cr.var", cr.var, lambda x, axis, ddof, keepdims: _torch_reduce(
        torch.var, x, axis, keepdims, correction=ddof)),
    "std": ("cr.std", cr.std, lambda x, axis, ddof, keepdims: _torch_reduce(
        torch.std, x, axis, keepdims, correction=ddof)),
    "logsumexp": ("cr.logsumexp", cr.logsumexp, lambda x, axis, keepdims: _torch_reduce(
        torch.logsumexp, x, axis, keepdims)),
    "softmax": ("cr.softmax", cr.softmax, lambda x, axis: torch.softmax(x, dim=axis)),
    "log_softmax": ("cr.log_softmax", cr.log_softmax,
                    lambda x, axis: torch.log_softmax(x, dim=axis)),
    "matmul": ("cr.matmul", cr.matmul, lambda a, b: torch.matmul(a, b)),
    "linear": ("cr.nn.functional.linear", cr.nn.functional.linear,
               lambda *a: _F().linear(*a)),
    "cross_entropy": ("cr.nn.functional.cross_entropy", cr.nn.functional.cross_entropy,
                      lambda x, target, reduction: _F().cross_entropy(
                          x, _t(target), reduction=reduction)),
    "hinge_loss": ("cr.nn.functional.hinge_loss", cr.nn.functional.hinge_loss,
                   _torch_hinge),
    "binary_cross_entropy_with_logits": (
        "cr.nn.functional.binary_cross_entropy_with_logits",
        cr.nn.functional.binary_cross_entropy_with_logits,
        lambda x, t, reduction: _F().binary_cross_entropy_with_logits(
            x, t, reduction=reduction)),
    "bce_constant_target": (
        "cr.nn.functional.binary_cross_entropy_with_logits",
        cr.nn.functional.binary_cross_entropy_with_logits,
        lambda x, target, reduction: _F().binary_cross_entropy_with_logits(
            x, _t(target), reduction=reduction)),
    "mse_loss": ("cr.nn.functional.mse_loss", cr.nn.functional.mse_loss,
                 lambda a, b, reduction: _F().mse_loss(a, b, reduction=reduction)),
    "reshape": ("cr.reshape", cr.reshape, lambda x, shape: torch.reshape(x, shape)),
    "transpose": ("cr.transpose", cr.transpose, lambda x, axes: torch.permute(
        x, tuple(reversed(range(x.dim()))) if axes is None else axes)),
    "broadcast_to": ("cr.broadcast_to", cr.broadcast_to,
                     lambda x, shape: torch.broadcast_to(x, shape)),
    "getitem": ("cr.ops.getitem", cr.ops.getitem,
                lambda x, index: x[_torch_index(index)]),
    "index_add": ("IndexAdd.apply", IndexAdd.apply, _torch_index_add),
    "concatenate": ("join(cr.concatenate)", lambda *xs, axis: cr.concatenate(xs, axis=axis),
                    lambda *xs, axis: torch.cat(xs, dim=axis)),
    "stack": ("join(cr.stack)", lambda *xs, axis: cr.stack(xs, axis=axis),
              lambda *xs, axis: torch.stack(xs, dim=axis)),
}

# What each entry of CALLS exercises among engine.OPERATIONS (beyond its own name).
COVERS = {"std": {"var", "sqrt"}, "gelu": {"normal_cdf", "tanh", "multiply"},
          "silu": {"sigmoid", "multiply"}, "mse_loss": {"subtract", "multiply", "mean", "sum"},
          "bce_constant_target": {"binary_cross_entropy_with_logits"},
          **{f"scalar_{op}": {op} for op in ("add", "subtract", "multiply", "divide", "power")}}


# ----- drawing a program ----------------------------------------------------------------------
def _finite(v):
    return bool(np.all(np.isfinite(v)))


def _off_zero(v):
    return bool(np.all(np.abs(v) > MARGIN))


def _unique_extreme(v, axes, largest):
    """Whether the extreme along ``axes`` beats the runner-up by more than MARGIN."""
    if v.ndim == 0 or not axes or v.size == 0:
        return True
    rest = [i for i in range(v.ndim) if i not in axes]
    rows = np.transpose(v, rest + list(axes)).reshape(-1, int(np.prod([v.shape[a] for a in axes])))
    if rows.shape[1] < 2:
        return True
    ordered = np.sort(rows, axis=1)
    gap = ordered[:, -1] - ordered[:, -2] if largest else ordered[:, 1] - ordered[:, 0]
    return bool(np.all(gap > MARGIN))


class Generator:
    """Draws one program; ``values`` holds every node's value as chainrule computed it."""

    def __init__(self, seed):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.nodes, self.values = [], []
        self.failed = None  # (node, error) when chainrule raised on a valid step

    # --- shapes and leaves ---
    def shape(self):
        r = self.rng
        ndim = int(r.choice([0, 1, 1, 2, 2, 2, 3]))
        sizes = r.choice([0, 1, 1, 2, 2, 3, 3, 4], size=ndim)
        if 0 in sizes and r.random() < 0.6:  # empty arrays, but not too often
            sizes = np.where(sizes == 0, 2, sizes)
        return tuple(int(n) for n in sizes)

    def partner(self, shape):
        """A shape that broadcasts with ``shape``: fewer or more leading axes, some 1s."""
        r = self.rng
        s = [1 if r.random() < 0.3 else n for n in shape]
        if s and r.random() < 0.3:
            s = s[int(r.integers(1, len(s) + 1)):]
        elif r.random() < 0.2 and len(s) < 3:
            s = [int(r.choice([1, 2]))] + s
        return tuple(s)

    def array(self, shape, kind):
        r = self.rng
        if kind == "positive":
            values = r.uniform(0.3, 2.0, shape)
        elif kind == "unit":
            values = r.uniform(0.05, 0.95, shape)
        else:
            values = r.uniform(0.1, 2.0, shape) * r.choice([-1.0, 1.0], shape)
        return np.array(values, dtype=np.float64)  # an array even for shape ()

    def leaf(self, shape, kind="normal"):
        """A new leaf of ``shape``; sometimes a non-contiguous view of a larger array."""
        r = self.rng
        layout = str(r.choice(["", "", "T", "step", "neg"])) if len(shape) else ""
        if layout == "T":
            base = self.array(shape[::-1], kind)
        elif layout == "step":
            base = self.array((2 * shape[0],) + shape[1:], kind)
        else:
            base = self.array(shape, kind)
        leaf = Leaf(base, layout)
        return self.add(leaf, leaf.view())

    def add(self, node, value):
        self.nodes.append(node)
        self.values.append(np.asarray(value))
        return len(self.nodes) - 1

    def operand(self, ok=lambda v: True, shape=None, kind="normal", fresh=0.3):
        """A node to use as an operand: an earlier one that fits (nodes are reused), else
        a new leaf. ``ok`` is the condition on its values, ``shape`` an exact shape or a
        function of a shape that says whether it fits."""
        fits = (lambda s: True) if shape is None else shape if callable(shape) else (
            lambda s: s == shape)
        found = [i for i, v in enumerate(self.values)
                 if fits(v.shape) and _finite(v) and ok(v)]
        if found and self.rng.random() > fresh:
            recent = np.arange(1, len(found) + 1, dtype=float)  # later nodes more likely
            return found[int(self.rng.choice(len(found), p=recent / recent.sum()))]
        target = shape if isinstance(shape, tuple) else None
        for _ in range(20):
            s = target if target is not None else self.shape()
            if not fits(s):
                continue
            i = self.leaf(s, kind)
            if ok(self.values[i]):
                return i
            self.nodes.pop(), self.values.pop()
        return None

    # --- steps ---
    def step(self, op, args, **params):
        """Run the step through chainrule; keep it if its values stay moderate."""
        if any(a is None for a in args):
            return None
        node = Step(op, tuple(args), params)
        try:
            with cr.no_grad():
                value = run_step(node, [cr.Tensor._wrap(self.values[a]) for a in args],
                                 "chainrule").data
        except (ChainruleError, ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            i = self.add(node, np.zeros(0))
            self.failed = (i, e)
            return i
        if value.size > MAX_SIZE or (_finite(value) and value.size
                                     and np.abs(value).max() > LARGEST):
            return None
        return self.add(node, value)

    def draw(self, steps):
        makers = list(MAKERS)
        last = None
        for _ in range(steps * 4):
            if self.failed or steps == 0:
                break
            made = MAKERS[str(self.rng.choice(makers))](self)
            if made is not None:
                last, steps = made, steps - 1
        if self.failed:
            last = self.failed[0]
        if last is None:
            last = self.operand()
        return Program(self.nodes, last, self.seed).pruned()


def generate(seed, steps=None):
    g = Generator(seed)
    steps = int(g.rng.integers(1, 9)) if steps is None else steps
    return g.draw(steps)


def _axis(g, ndim, allow_tuple=True):
    """An ``axis`` argument: None, an int (maybe negative) or a tuple (maybe ())."""
    r = g.rng
    choice = r.random()
    if choice < 0.2:
        return None
    if ndim == 0:
        return int(r.choice([0, -1])) if choice < 0.7 or not allow_tuple else ()
    if choice < 0.6 or not allow_tuple:
        a = int(r.integers(-ndim, ndim))
        return a
    k = int(r.integers(0, ndim + 1))
    axes = sorted(r.choice(ndim, size=k, replace=False).tolist())
    return tuple(int(a) - ndim if r.random() < 0.3 else int(a) for a in axes)


def _reduced(v, axis):
    if axis is None:
        return tuple(range(v.ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    return tuple(sorted({a % v.ndim for a in axes})) if v.ndim else ()


def _unary(op, ok=lambda v: True, kind="normal", **choices):
    def make(g):
        params = {k: c[int(g.rng.integers(len(c)))] for k, c in choices.items()}
        return g.step(op, [g.operand(ok, kind=kind)], **params)
    return make


def _binary(op, ok_b=lambda v: True, kind_b="normal", ok_a=lambda v: True, kind_a="normal",
            ok_pair=lambda a, b: True):
    def make(g):
        a = g.operand(ok_a, kind=kind_a)
        if a is None:
            return None
        sa = g.values[a].shape

        def fits(s):
            try:
                return int(np.prod(np.broadcast_shapes(sa, s))) <= MAX_SIZE
            except ValueError:
                return False
        b = g.operand(ok_b, shape=fits if g.rng.random() < 0.6 else g.partner(sa), kind=kind_b)
        if b is None or not ok_pair(g.values[a], g.values[b]):
            return None
        return g.step(op, [b, a] if g.rng.random() < 0.3 and op == "add" else [a, b])
    return make


def _scalar(op, ok=lambda v: True, kind="normal", scalars=(2.0, -1.5, 0.5)):
    def make(g):
        scalar = float(g.rng.choice(scalars))
        first = bool(g.rng.random() < 0.5)
        if op == "scalar_power":
            first, scalar = (True, 1.7) if first else (False, float(g.rng.choice([2.0, 3.0])))
            ok_x = (lambda v: True) if not first else (lambda v: np.all(np.abs(v) < 5))
            return g.step(op, [g.operand(ok_x)], scalar=scalar, scalar_first=first)
        x = g.operand(_off_zero if op == "scalar_divide" and first else ok, kind=kind)
        return g.step(op, [x], scalar=scalar, scalar_first=first)
    return make


def _apart(a, b):
    return bool(np.all(np.abs(np.subtract(a, b)) > MARGIN))


def _make_where(g):
    a = g.operand()
    if a is None:
        return None
    b = g.operand(shape=g.partner(g.values[a].shape))
    shape = np.broadcast_shapes(g.values[a].shape, g.values[b].shape)
    condition = g.rng.random(g.partner(shape)) < 0.5
    return g.step("where", [a, b], condition=condition)


def _make_clip(g):
    x = g.operand()
    if x is None:
        return None
    v = g.values[x]
    bounds = []
    for low in (True, False):
        kind = g.rng.random()
        if kind < 0.25:
            bounds.append(None)
        elif kind < 0.5:
            bounds.append(float(g.rng.uniform(-1.0, 0.0) if low else g.rng.uniform(0.0, 1.0)))
        else:  # an array bound; sometimes with more axes than x (x is broadcast)
            shape = g.partner(v.shape) if g.rng.random() < 0.7 else (2,) + v.shape[-1:]
            b = g.rng.uniform(-1.5, 0.0, shape) if low else g.rng.uniform(0.0, 1.5, shape)
            bounds.append(b)
    low, high = bounds
    try:
        if any(b is not None and not _apart(v, b) for b in bounds):
            return None
        out_shape = np.broadcast_shapes(v.shape, *(np.shape(b) for b in bounds if b is not None))
    except ValueError:
        return None
    if int(np.prod(out_shape)) > MAX_SIZE:
        return None
    return g.step("clip", [x], min=low, max=high)


def _reduction(op, largest=None, ddof=False, positive=False):
    def make(g):
        x = g.operand()
        if x is None:
            return None
        v = g.values[x]
        axis = _axis(g, v.ndim)
        axes = _reduced(v, axis)
        count = int(np.prod([v.shape[a] for a in axes]))
        if largest is not None and (count == 0 or not _unique_extreme(v, axes, largest)):
            return None
        params = dict(axis=axis, keepdims=bool(g.rng.random() < 0.4))
        if ddof:
            params["ddof"] = int(g.rng.choice([0, 0, 1, 1, 2, count]))
            if positive and count - params["ddof"] > 0:
                spread = np.var(v, axis=axes) if count else 1.0
                if not np.all(np.asarray(spread) > 1e-3):
                    return None  # sqrt's kink at a variance of 0
        return g.step(op, [x], **params)
    return make


def _softmax(op):
    def make(g):
        x = g.operand()
        if x is None:
            return None
        ndim = g.values[x].ndim
        axis = int(g.rng.integers(-ndim, ndim)) if ndim else int(g.rng.choice([0, -1]))
        return g.step(op, [x], axis=axis)
    return make


def _make_matmul(g):
    a = g.operand(shape=lambda s: 1 <= len(s) <= 3)
    if a is None:
        return None
    sa = g.values[a].shape
    k, r = sa[-1], g.rng
    m = int(r.choice([0, 1, 2, 3]) if r.random() < 0.2 else r.choice([1, 2, 3]))
    form = r.random()
    if form < 0.25:
        sb = (k,)
    elif form < 0.75 or len(sa) < 2:
        sb = (k, m)
    else:
        sb = (int(r.choice([1, 2])),) + (k, m) if len(sa) == 2 else sa[:-2] + (k, m)
    return g.step("matmul", [a, g.operand(shape=sb)])


def _make_linear(g):
    x = g.operand(shape=lambda s: 1 <= len(s) <= 3)
    if x is None:
        return None
    k = g.values[x].shape[-1]
    out = int(g.rng.choice([1, 2, 3]))
    args = [x, g.operand(shape=(out, k))]
    if g.rng.random() < 0.7:
        args.append(g.operand(shape=(out,)))
    return g.step("linear", args)


def _targets(g, n, c):
    return g.rng.integers(0, c, n).astype(np.int64)  # labels repeat across rows


def _make_cross_entropy(g):
    x = g.operand(shape=lambda s: len(s) == 2 and s[1] >= 1 and (s[0] > 0 or g.rng.random() < .1))
    if x is None:
        return None
    n, c = g.values[x].shape
    return g.step("cross_entropy", [x], target=_targets(g, n, c),
                  reduction=str(g.rng.choice(["mean", "sum", "none"])))


def _make_hinge(g):
    x = g.operand(shape=lambda s: len(s) == 2 and s[1] >= 1 and s[0] > 0)
    if x is None:
        return None
    v = g.values[x]
    target = _targets(g, *v.shape)
    margin = float(g.rng.choice([1.0, 0.5]))
    margins = v - v[np.arange(len(v)), target][:, None] + margin
    margins[np.arange(len(v)), target] = 1.0  # the correct class has no kink
    if not _off_zero(margins):
        return None
    return g.step("hinge_loss", [x], target=target, margin=margin,
                  reduction=str(g.rng.choice(["mean", "sum", "none"])))


def _make_bce(g):
    x = g.operand()
    if x is None:
        return None
    shape, reduction = g.values[x].shape, str(g.rng.choice(["mean", "sum", "none"]))
    if g.rng.random() < 0.5:  # the target is itself differentiated
        t = g.operand(lambda v: np.all((v > 0) & (v < 1)), shape=shape, kind="unit")
        return g.step("binary_cross_entropy_with_logits", [x, t], reduction=reduction)
    return g.step("bce_constant_target", [x], target=g.rng.uniform(0, 1, shape),
                  reduction=reduction)


def _make_mse(g):
    a = g.operand()
    if a is None:
        return None
    b = g.operand(shape=g.values[a].shape)
    return g.step("mse_loss", [a, b], reduction=str(g.rng.choice(["mean", "sum", "none"])))


def _make_reshape(g):
    x = g.operand()
    if x is None:
        return None
    size = g.values[x].size
    r = g.rng
    shape = [size] if size else [int(r.choice([0, 1])), 0, int(r.choice([1, 2]))]
    if size:
        for d in (2, 3, 2):
            if shape[-1] % d == 0 and r.random() < 0.5:
                shape = shape[:-1] + [d, shape[-1] // d]
        if r.random() < 0.3:
            shape.insert(int(r.integers(0, len(shape) + 1)), 1)
        if r.random() < 0.3 and shape:  # (never for 0 elements: -1 would be ambiguous)
            shape[int(r.integers(len(shape)))] = -1
        if r.random() < 0.1 and size == 1:
            shape = []
    else:
        shape = [n for n in shape if r.random() < 0.7 or n == 0]
    return g.step("reshape", [x], shape=tuple(int(n) for n in shape))


def _make_transpose(g):
    x = g.operand()
    if x is None:
        return None
    ndim = g.values[x].ndim
    if g.rng.random() < 0.3:
        return g.step("transpose", [x], axes=None)
    axes = g.rng.permutation(ndim).tolist()
    return g.step("transpose", [x], axes=tuple(int(a) - ndim if g.rng.random() < 0.3 else int(a)
                                               for a in axes))


def _make_broadcast_to(g):
    x = g.operand()
    if x is None:
        return None
    shape = [int(g.rng.choice([0, 2, 3])) if n == 1 and g.rng.random() < 0.6 else n
             for n in g.values[x].shape]
    if g.rng.random() < 0.5 and len(shape) < 3:
        shape = [int(g.rng.choice([1, 2, 3]))] + shape
    return g.step("broadcast_to", [x], shape=tuple(shape))


def _make_getitem(g):
    x = g.operand()
    if x is None:
        return None
    v, r = g.values[x], g.rng
    if v.ndim == 0:
        return g.step("getitem", [x], index=[(), Ellipsis, None][int(r.integers(3))])
    n = v.shape[0]
    form = r.random()
    if form < 0.2 and n:
        index = int(r.integers(-n, n))
    elif form < 0.4:
        start = int(r.integers(-n - 1, n + 1))
        index = slice(start, None if r.random() < 0.5 else int(r.integers(0, n + 2)),
                      int(r.choice([1, 2])))
    elif form < 0.65 and n:  # repeated integer indices: their gradients add up
        index = r.integers(-n, n, size=(int(r.choice([1, 3, 4])),) if r.random() < 0.7
                           else (2, 2))
    elif form < 0.8:
        index = r.random(v.shape if r.random() < 0.4 else v.shape[:1]) < 0.5
    elif form < 0.9 and v.ndim >= 2 and n and v.shape[1]:
        index = (r.integers(0, n, (2, 1)), r.integers(0, v.shape[1], 3))
    else:
        index = (Ellipsis, slice(None, None, 2), None) if r.random() < 0.5 else (
            None, slice(1, None))
    return g.step("getitem", [x], index=index)


def _make_index_add(g):
    values = g.operand(shape=lambda s: len(s) >= 1)
    if values is None:
        return None
    s = g.values[values].shape
    n = int(g.rng.choice([1, 2, 3]))
    index = g.rng.integers(0, n, s[0])  # repeated positions accumulate
    return g.step("index_add", [values], shape=(n,) + s[1:], index=index)


def _make_join(op):
    def make(g):
        first = g.operand(shape=lambda s: len(s) >= (1 if op == "concatenate" else 0))
        if first is None:
            return None
        s = g.values[first].shape
        ndim = len(s) + (op == "stack")
        axis = int(g.rng.integers(-ndim, ndim))
        parts = [first]
        for _ in range(int(g.rng.integers(0, 3))):
            if op == "concatenate":
                t = list(s)
                t[axis % len(s)] = int(g.rng.choice([0, 1, 2]))
                parts.append(g.operand(shape=tuple(t)))
            else:
                parts.append(g.operand(shape=s))
        return g.step(op, parts, axis=axis)
    return make


MAKERS = {
    "negative": _unary("negative"),
    "exp": _unary("exp", lambda v: np.all(v < 5)),
    "log": _unary("log", lambda v: np.all(v > 0.1), "positive"),
    "log1p": _unary("log1p", lambda v: np.all(v > -0.8), "positive"),
    "sqrt": _unary("sqrt", lambda v: np.all(v > 0.1), "positive"),
    "abs": _unary("abs", _off_zero),
    "tanh": _unary("tanh"),
    "sigmoid": _unary("sigmoid"),
    "relu": _unary("relu", _off_zero),
    "leaky_relu": _unary("leaky_relu", _off_zero, negative_slope=[0.01, 0.1, 0.3]),
    "elu": _unary("elu", _off_zero, alpha=[1.0, 0.5]),
    "softplus": _unary("softplus", beta=[1.0, 2.0, 0.5]),
    "normal_cdf": _unary("normal_cdf"),
    "gelu": _unary("gelu", approximate=["none", "tanh"]),
    "silu": _unary("silu"),
    "astype": _unary("astype", dtype=[np.dtype(np.float64)]),
    "add": _binary("add"),
    "subtract": _binary("subtract"),
    "multiply": _binary("multiply"),
    "divide": _binary("divide", ok_b=lambda v: np.all(np.abs(v) > 0.2)),
    "power": _binary("power", ok_a=lambda v: np.all(v > 0.3), kind_a="positive",
                     ok_b=lambda v: np.all(np.abs(v) < 3)),
    "maximum": _binary("maximum", ok_pair=_apart),
    "minimum": _binary("minimum", ok_pair=_apart),
    **{f"scalar_{op}": _scalar(f"scalar_{op}")
       for op in ("add", "subtract", "multiply", "divide", "power")},
    "where": _make_where,
    "clip": _make_clip,
    "sum": _reduction("sum"),
    "mean": _reduction("mean"),
    "max": _reduction("max", largest=True),
    "min": _reduction("min", largest=False),
    "var": _reduction("var", ddof=True),
    "std": _reduction("std", ddof=True, positive=True),
    "logsumexp": _reduction("logsumexp"),
    "softmax": _softmax("softmax"),
    "log_softmax": _softmax("log_softmax"),
    "matmul": _make_matmul,
    "linear": _make_linear,
    "cross_entropy": _make_cross_entropy,
    "hinge_loss": _make_hinge,
    "binary_cross_entropy_with_logits": _make_bce,
    "mse_loss": _make_mse,
    "reshape": _make_reshape,
    "transpose": _make_transpose,
    "broadcast_to": _make_broadcast_to,
    "getitem": _make_getitem,
    "index_add": _make_index_add,
    "concatenate": _make_join("concatenate"),
    "stack": _make_join("stack"),
}


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
        return {"value": np.array(out.data), "grad": arrays(first), "second": arrays(second)}
    first = torch.autograd.grad(out, leaves, _t(upstream), create_graph=True, allow_unused=True)
    terms = [(g * _t(v)).sum() for g, v in zip(first, vs) if g is not None and g.requires_grad]
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


def plain_gradients(program, bases, upstream):
    """chainrule's first gradients by an ordinary backward pass (no create_graph)."""
    nodes, leaves = [], []
    for i, node in enumerate(program.nodes):
        if isinstance(node, Leaf):
            t = cr.Tensor(bases[i], requires_grad=True)
            t.data = node.view(t.data)
            leaves.append(t)
            nodes.append(t)
        else:
            nodes.append(run_step(node, [nodes[a] for a in node.args], "chainrule"))
    grads = grad(nodes[program.output], leaves, grad_outputs=upstream, allow_unused=True)
    return [np.zeros(t.shape) if g is None else g.data for g, t in zip(grads, leaves)]


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
        if not _finite(ours["value"]):
            return None  # centered differences of NaN or inf say nothing
        theirs = numerical(program, ours)
        tol = NUMERICAL_TOL
    else:
        tol = TORCH_TOL
        found = _compare("value", ours["value"], theirs["value"], tol, source)
        if found:
            return found
    leaves = program.leaves()
    for kind, label in (("grad", "gradient"), ("second", "second derivative")):
        for k, (a, b) in enumerate(zip(ours[kind], theirs[kind])):
            found = _compare(f"{label} of leaf x{leaves[k]}", a, b, tol, source,
                             finite_only=not _finite(ours["value"]))
            if found:
                return found
    return None


# ----- shrinking and printing failures --------------------------------------------------------
def shrink(program, fails, budget=200):
    """A smaller program for which ``fails(program)`` still gives a message.

    First the smallest earlier node that fails as the output; then, node by node, an
    intermediate node replaced by a leaf holding its value (cutting off the graph behind
    it); then non-contiguous leaves made contiguous."""
    calls = 0

    def still(p):
        nonlocal calls
        calls += 1
        return calls <= budget and fails(p) is not None

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
    return program


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
             "    return cr.where(condition, a, b)", ""]
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
