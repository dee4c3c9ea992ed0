"""Drawing a random program from a seed.

``generate(seed)`` draws steps with the makers of ``MAKERS``, one per entry of
``calls.CALLS``. A maker picks operands (an earlier node that fits, so nodes are reused,
or a new leaf: 0-d, size-1 and empty axes, non-contiguous views) and parameters, and the
step is run through chainrule at once, so that operands can be kept off the kinks of the
operation (|x| > MARGIN for relu, no near-ties for max) and inside its domain (log of
positive numbers).
"""

from __future__ import annotations

import numpy as np

import chainrule as cr

from .programs import LARGEST, MARGIN, MAX_SIZE, Leaf, Program, Step, finite, run_step


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
                 if fits(v.shape) and finite(v) and ok(v)]
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
        except Exception as e:  # noqa: BLE001 - the program ends here; check() reports it
            i = self.add(node, np.zeros(0))
            self.failed = (i, e)
            return i
        if value.size > MAX_SIZE or (finite(value) and value.size
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
    elif form < 0.95:
        index = (Ellipsis, slice(None, None, 2), None) if r.random() < 0.5 else (
            None, slice(1, None))
    else:  # reversed, as NumPy allows
        index = slice(None, None, int(r.choice([-1, -2])))
    return g.step("getitem", [x], index=index)


def _make_activation(g):
    """One of the seven activation modules of ``nn.ACTIVATIONS``, with its defaults."""
    name = str(g.rng.choice(sorted(cr.nn.ACTIVATIONS)))
    return g.step("activation", [g.operand(_off_zero)], name=name)


def _make_expand(g):
    """PyTorch's expand: -1 keeps a dimension."""
    x = g.operand(shape=lambda s: len(s) >= 1)
    if x is None:
        return None
    sizes = [int(g.rng.choice([2, 3])) if n == 1 and g.rng.random() < 0.6 else
             (-1 if g.rng.random() < 0.5 else n) for n in g.values[x].shape]
    if g.rng.random() < 0.4:
        sizes = [2] + sizes
    return g.step("expand", [x], sizes=tuple(sizes))


def _make_swapaxes(g):
    x = g.operand(shape=lambda s: len(s) >= 1)
    if x is None:
        return None
    ndim = g.values[x].ndim
    a, b = (int(a) for a in g.rng.integers(-ndim, ndim, 2))
    return g.step("swapaxes", [x], axis1=a, axis2=b)


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
    "activation": _make_activation,
    "expand": _make_expand,
    "swapaxes": _make_swapaxes,
    "index_add": _make_index_add,
    "concatenate": _make_join("concatenate"),
    "stack": _make_join("stack"),
}
