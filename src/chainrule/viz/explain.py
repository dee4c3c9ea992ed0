"""The backward pass, one node at a time, in the lecture's words.

For each node, in the order backpropagation visits them: its forward value, its local
gradient for each input (d node / d input), the upstream gradient arriving from the
output (d output / d node) and the downstream gradients it sends to its inputs
(upstream times local gradient). The gate patterns of the lecture are named where they
apply: add is a gradient distributor, multiply a swapper, max a router, and a value used
twice is copied, so its gradients add.
"""

from __future__ import annotations

import html
import textwrap

import numpy as np

from .. import engine
from ..errors import ChainruleError, GraphError
from ..tensor import Tensor
from .graph import (
    INFIX,
    format_number,
    format_value,
    forward_order,
    given_labels,
    is_released,
    label_for,
    parents_of,
    tensor_names,
    trace_backward,
)

PATTERNS = {"add": "distributor", "multiply": "swapper", "maximum": "router",
            "minimum": "router", "max": "router", "min": "router"}
JACOBIAN_LIMIT = 256  # form a local Jacobian only up to this many entries
COLUMNS = [("node", "node"), ("op", "op"), ("value", "value"),
           ("local_grad", "local grad"), ("upstream", "upstream"),
           ("downstream", "downstream"), ("pattern", "pattern")]


def explain(output, gradient=None, names=None) -> Explanation:
    """Backpropagate from ``output`` and report every node's part in it.

    Runs its own backward pass on the retained graph (no ``.grad`` is touched, the graph
    stays usable). ``gradient`` is the upstream gradient of the output (default: 1, or
    ones for an output with several elements, i.e. the gradients of ``output.sum()``).
    Nodes are named as in ``draw_graph``: a model's parameters by their names in
    ``named_parameters()``, the batch it was called on X, and ``names`` ({label: tensor,
    array or Module}) for anything else.

    Returns an ``Explanation``: print it for an aligned table, or read ``.rows``, a list
    of dicts with keys ``node`` (e.g. "q = x + y"), ``name``, ``op``, ``inputs``,
    ``value``, ``local_grad`` (one per input: a number, an elementwise array, a small
    Jacobian of shape (out.size, in.size) or a note that it is too big to form),
    ``upstream``, ``downstream`` (one per input) and ``pattern``. Single values are
    Python floats.
    """
    if not isinstance(output, Tensor):
        raise ChainruleError(f"explain: expected a Tensor, got {type(output).__name__}")
    order = forward_order(output)
    if any(is_released(t) for t in order):
        raise GraphError("explain: the graph was released by an earlier backward(); call "
                         "explain() before backward(), or backward(retain_graph=True)")
    given = given_labels(names)
    names = tensor_names(order, output, names)
    uses = {}
    for t in order:
        for p in parents_of(t) or ():
            if isinstance(p, Tensor):
                uses[id(p)] = uses.get(id(p), 0) + 1
    steps = trace_backward(output, gradient)
    rows = [_row(step, names, given, uses.get(id(step.tensor), 0)) for step in steps]
    notes = []
    if gradient is None and output.size != 1:
        notes.append(f"the output has shape {output.shape}: its upstream gradient is ones "
                     "(these are the gradients of output.sum())")
    return Explanation(rows, notes)


def _row(step, names, given, n_uses) -> dict:
    t = step.tensor
    name = names[id(t)]
    patterns = []
    if t._ctx is None:
        row = dict(node=name, name=name, op="leaf", inputs=[], value=_plain(t.data),
                   local_grad=[], local_grad_kind=None, downstream=[])
    else:
        ctx, fn = t._ctx, t._ctx.fn
        args = [_arg_label(p, names, given) for p in ctx.parents]
        local, kind = local_gradients(t)
        row = dict(node=f"{name} = {_expression(fn, args)}", name=name, op=fn.name,
                   inputs=args, value=_plain(t.data), local_grad=local, local_grad_kind=kind,
                   downstream=[None if d is None else _plain(d) for d in step.downstream])
        if fn.name in PATTERNS:
            patterns.append(PATTERNS[fn.name])
    row["upstream"] = _plain(step.upstream)
    if n_uses > 1:
        patterns.append("copy: gradients add")
    row["pattern"] = "; ".join(patterns)
    return row


def local_gradients(t: Tensor):
    """d t / d input for each input of the operation that made ``t``, and their kind.

    Elementwise operations: the elementwise derivative (the rule applied to an upstream
    of ones), a number for single values ("scalar" / "elementwise"). Others: the
    Jacobian of shape (t.size, input.size), one backward call per output element, when
    it has at most ``JACOBIAN_LIMIT`` entries ("jacobian"); else a note ("not formed").
    Inputs that need no gradient get None.
    """
    ctx = t._ctx
    out = np.asarray(t.data)
    needs = ctx.needs_input_grad
    if ctx.fn.elementwise:
        local = _call_rule(ctx, np.ones_like(out))
        scalar = out.size == 1 and all(np.size(a) == 1 for a in ctx.inputs)
        return [_plain(d) if need and d is not None else None
                for d, need in zip(local, needs)], "scalar" if scalar else "elementwise"
    sizes = [int(np.size(a)) for a in ctx.inputs]
    if any(need and out.size * n > JACOBIAN_LIMIT for need, n in zip(needs, sizes)):
        return [f"Jacobian ({out.size} x {n}), not formed" if need else None
                for need, n in zip(needs, sizes)], "not formed"
    rows = [[] for _ in sizes]
    for i in range(out.size):
        onehot = np.zeros(out.shape, dtype=out.dtype)
        onehot.flat[i] = 1
        for k, (d, a) in enumerate(zip(_call_rule(ctx, onehot), ctx.inputs)):
            if needs[k] and d is not None:
                rows[k].append(np.ravel(engine.sum_to_shape(np.asarray(d), np.shape(a))))
    return [np.array(r) if needs[k] and r else None for k, r in enumerate(rows)], "jacobian"


def _call_rule(ctx, upstream) -> tuple:
    ctx.xp = engine.ARRAY_MATH
    result = ctx.fn.backward(ctx, upstream)
    return result if isinstance(result, tuple) else (result,)


def _expression(fn, args) -> str:
    symbol = fn.symbol
    if symbol in INFIX and len(args) == 2:
        return f"{args[0]} {symbol} {args[1]}"
    if fn.name == "negative":
        return f"-{args[0]}"
    if symbol == "[]":
        return f"{args[0]}[...]"
    return f"{symbol}({', '.join(args)})"


def _arg_label(p, names, given) -> str:
    if isinstance(p, Tensor):
        return names[id(p)]
    if np.ndim(p) == 0:
        return format_number(np.asarray(p).item())
    return label_for(p, given) or "const"


def _plain(x):
    """A single value as a Python float; arrays as they are."""
    a = np.asarray(x)
    if a.size == 1 and a.dtype.kind in "biuf":
        return float(a.reshape(()).item())
    return a


# ----- the table -------------------------------------------------------------------------
TERMINAL_WIDTH = 120  # the printed table leaves out the op column rather than grow wider


NODE_WIDTH = 24  # a longer node expression wraps


def _cell(row, key) -> str:
    return " ".join(line.strip() for line in _cell_lines(row, key))


def _value_lines(v) -> list[str]:
    """A value in one line, or an array's shape over its mean and spread (two lines)."""
    text = format_value(v, inline=4)
    shape, sep, stats = text.partition(" μ=")
    return [shape, f"μ={stats}"] if sep else [text]


def _cell_lines(row, key) -> list[str]:
    """The cell as lines of text: arrays take two (shape, then mean and spread), so that a
    row of a real network stays narrow; a cell with several inputs has a block each."""
    value = row[key]
    if key == "node":
        return textwrap.wrap(value, NODE_WIDTH, subsequent_indent="    ",
                             break_on_hyphens=False) or [""]
    if key in ("local_grad", "downstream"):
        blocks = []
        for name, v in zip(row["inputs"], value):
            if v is None:
                continue
            if isinstance(v, str):  # a Jacobian too big to form: its size says enough
                parts = [v.replace("Jacobian (", "J ").replace(" x ", "x")
                         .replace("), not formed", "")]
            elif key == "local_grad" and row["local_grad_kind"] == "jacobian":
                parts = _value_lines(v)
                parts[0] = "J " + parts[0]
            else:
                parts = _value_lines(v)
            blocks.append([f"{name}: {parts[0]}"] + ["  " + p for p in parts[1:]])
        joined = ", ".join(b[0] for b in blocks)
        if all(len(b) == 1 for b in blocks) and len(joined) <= NODE_WIDTH:
            return [joined]  # numbers: one line, as in the lecture
        return [line for b in blocks for line in b]
    if key in ("value", "upstream"):
        return _value_lines(value)
    return [str(value)]


class Explanation:
    """The rows of a backward pass (see ``explain``); prints as an aligned table.

    ``rows`` is a list of dicts; ``to_markdown()`` gives a Markdown table; Jupyter shows
    an HTML table. ``explanation["q"]`` is the row of the node named q.
    """

    def __init__(self, rows: list[dict], notes: list[str] | None = None):
        self.rows = rows
        self.notes = list(notes or [])

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            for row in self.rows:
                if row["name"] == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    def table(self) -> list[list[str]]:
        """The header and the rows as text cells."""
        return [[title for _, title in COLUMNS]] + [
            [_cell(row, key) for key, _ in COLUMNS] for row in self.rows]

    def __str__(self):
        columns = list(COLUMNS)
        text = self._text(columns)
        if max(map(len, text.splitlines())) > TERMINAL_WIDTH:  # the node column names the op
            columns = [c for c in columns if c[0] != "op"]
            if not any(row["pattern"] for row in self.rows):
                columns = [c for c in columns if c[0] != "pattern"]
            text = self._text(columns)
        notes = list(self.notes)
        if any(isinstance(v, str) for row in self.rows for v in row["local_grad"]):
            notes.append("J mxn: a local Jacobian too big to form; backward multiplies by "
                         "it without forming it")
        return "\n".join([text] + [f"note: {n}" for n in notes])

    def _text(self, columns) -> str:
        """Aligned columns; a row whose cells have several lines takes several lines."""
        header = [[title] for _, title in columns]
        rows = [[_cell_lines(row, key) for key, _ in columns] for row in self.rows]
        widths = [max(len(line) for r in [header, *rows] for line in r[i])
                  for i in range(len(columns))]
        lines = ["  ".join(c[0].ljust(w) for c, w in zip(header, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        for cells in rows:
            for k in range(max(len(c) for c in cells)):
                lines.append("  ".join((c[k] if k < len(c) else "").ljust(w)
                                       for c, w in zip(cells, widths)).rstrip())
        return "\n".join(lines)

    __repr__ = __str__

    def to_markdown(self) -> str:
        cells = self.table()
        esc = [[c.replace("|", "\\|") for c in r] for r in cells]
        lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
        return "\n".join(lines + [f"\n{n}" for n in self.notes]) + "\n"

    def _repr_html_(self) -> str:
        cells = self.table()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
        body = "".join("<tr>" + "".join(f"<td><code>{html.escape(c)}</code></td>" for c in r)
                       + "</tr>" for r in cells[1:])
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"
