"""The backprop player: one offline HTML page that steps through a graph's passes.

``player(output, path)`` lays the graph out as ``draw_graph`` does and writes a single
self-contained HTML file (no network request of any kind; it opens from ``file://``).
The page steps **forward** (each node's value appears in topological order) and then
**backward** (each node in turn is highlighted and its ``explain`` row is written out as
arithmetic: upstream x local = downstream, with the lecture's gate pattern named).
Every number on the page is a cell of ``cr.explain(output)``'s table, so the two agree.

With ``recompute`` the page can also colour every node by a numerical gradient check
(CS231n's thresholds), and for a node whose gradient is zero it names the gate that
stopped it: a ReLU that was off, a max that routed elsewhere, a saturated sigmoid or tanh.
A Linear layer's operation and its weight and bias are drawn as one node with shapes
until it is clicked.
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources

import numpy as np

from .._io import atomic_write_text, json_default
from ..errors import ChainruleError
from ..tensor import Tensor
from .explain import explain
from .graph import collect_graph, format_value, forward_order, parents_of, tensor_names
from .svg import (
    EDGE_COLOR,
    GRAD_COLOR,
    LINE_H,
    MARGIN,
    STYLE,
    VALUE_COLOR,
    _edge_points,
    _node_size,
    edge_path,
    layered_layout,
    text_width,
)

PATTERN_TEXT = {
    "distributor": "add is a gradient distributor: every input receives the upstream "
                   "gradient unchanged (local gradient 1)",
    "swapper": "multiply is a swapper: each input's local gradient is the other input",
    "router": "max is a router: the whole upstream gradient goes to the input that won; "
              "the others get 0",
    "copy: gradients add": "copy: this value was used more than once, so the gradients "
                           "coming back along its uses add up",
}


def player(output, path=None, recompute=None, title=None, model=None, record=None) -> str:
    """Write the backprop player of ``output``'s graph as one offline HTML file.

    Args:
        output: the Tensor whose graph to step through (a number from a formula, or a
            model's loss on a small batch); its graph must still be alive (call before
            ``backward()``, or after ``backward(retain_graph=True)``).
        path: where to write the page (atomically); None only returns it.
        recompute: optional; called with no argument it builds the same graph again
            from the same leaves (``lambda: F.cross_entropy(model(X), y)``). With it the
            page offers a numerical gradient check of every node.
        title: the page's heading (default: "Backpropagation, step by step").
        model: optional; its parameters without a ``name`` are shown by their names in
            the model (``0.weight``...).
        record: optional training steps to scrub through with a slider, as made by
            ``chainrule.viz.recording.StepRecorder`` (a dict).

    Returns: the HTML text.
    """
    if not isinstance(output, Tensor):
        raise ChainruleError(f"player: expected a Tensor, got {type(output).__name__}")
    named = []
    if model is not None:  # lend the parameters their module names while the page is made
        for name, p in model.named_parameters():
            if p.name is None:
                p.name = name
                named.append(p)
    try:
        data = player_data(output, recompute=recompute, title=title)
    finally:
        for p in named:
            p.name = None
    if record is not None:
        data["record"] = record
    page = render_page(data)
    if path is not None:
        atomic_write_text(path, page)
    return page


def player_data(output: Tensor, recompute=None, title=None) -> dict:
    """Everything the page shows, as plain JSON-ready values (see ``player``)."""
    table = explain(output)
    cells = table.table()[1:]
    rows = table.rows
    order = forward_order(output)
    names = tensor_names(order, output)
    graph = collect_graph(output, show_grad=True)
    tensor_nodes = [n for n in graph.nodes if n.kind in ("leaf", "op")]
    node_of = {id(t): n.id for t, n in zip(order, tensor_nodes)}
    tensor_of = {n.id: t for t, n in zip(order, tensor_nodes)}
    row_of_name = {row["name"]: i for i, row in enumerate(rows)}
    upstreams = {id(t): None for t in order}
    for row, t in ((rows[row_of_name[names[id(t)]]], t) for t in order
                   if names[id(t)] in row_of_name):
        upstreams[id(t)] = row["upstream"]

    checks = {}
    if recompute is not None:
        from .node_check import check_nodes

        checks = check_nodes(output, recompute, {k: v for k, v in upstreams.items()
                                                 if v is not None})
    consumers: dict[int, list] = {}
    for c in order:
        for p in parents_of(c) or ():
            if isinstance(p, Tensor):
                consumers.setdefault(id(p), []).append(c)
    groups = _linear_groups(order, names, node_of)
    layout = _layout(graph)

    nodes = []
    for n in graph.nodes:
        t = tensor_of.get(n.id)
        name = names[id(t)] if t is not None else ("output" if n.kind == "output" else
                                                   f"const{n.id}")
        entry = {"id": n.id, "kind": n.kind, "label": n.label, "name": name,
                 "tag": n.name, "value": format_value(n.value), "info": n.info,
                 "row": row_of_name.get(name) if t is not None else None,
                 **layout["boxes"][n.id]}
        if t is not None:
            entry["shape"] = list(t.shape)
            if id(t) in checks:
                entry["check"] = checks[id(t)]
            why = why_zero(t, consumers, names, upstreams)
            if why:
                entry["why_zero"] = why
        nodes.append(entry)
    for group in groups:
        nodes[group["op"]]["group"] = group

    edges = []
    for k, e in enumerate(graph.edges):
        edges.append({"src": e.src, "dst": e.dst, "d": layout["paths"][k],
                      "label": layout["labels"][k], "value": format_value(e.value),
                      "grad": "" if e.grad is None else format_value(e.grad)})

    steps = []
    for row_index, (row, row_cells) in enumerate(zip(rows, cells)):
        steps.append(_backward_step(row, row_cells, row_index, node_of, order, names))
    forward = [n.id for n in graph.nodes if n.kind in ("leaf", "op")]
    return {
        "title": title or "Backpropagation, step by step",
        "width": layout["width"], "height": layout["height"],
        "nodes": nodes, "edges": edges, "forward": forward, "backward": steps,
        "output_node": graph.nodes[-1].id,
        "table": {"header": table.table()[0], "rows": cells},
        "notes": table.notes + [n for n in graph.notes if n not in table.notes],
        "has_check": bool(checks),
        "colors": {"value": VALUE_COLOR, "grad": GRAD_COLOR, "edge": EDGE_COLOR,
                   "style": STYLE},
    }


def _backward_step(row, row_cells, row_index, node_of, order, names) -> dict:
    """One step of the backward pass: the node and its arithmetic, as text."""
    by_name = {names[id(t)]: t for t in order}
    t = by_name[row["name"]]
    upstream = format_value(row["upstream"])
    lines = []
    for name, local, down in zip(row["inputs"], row["local_grad"], row["downstream"]):
        if local is None or down is None:
            continue
        local_text = local if isinstance(local, str) else format_value(local)
        if row["local_grad_kind"] == "jacobian" and not isinstance(local, str):
            local_text = "J " + local_text
        lines.append({"input": name, "upstream": upstream, "local": local_text,
                      "downstream": format_value(down)})
    patterns = [p.strip() for p in row["pattern"].split(";") if p.strip()]
    return {"node": node_of[id(t)], "row": row_index, "title": row["node"],
            "op": row["op"], "value": row_cells[2], "upstream": row_cells[4],
            "lines": lines, "pattern": row["pattern"],
            "pattern_text": [PATTERN_TEXT.get(p, p) for p in patterns]}


# ----- why is this gradient zero? ----------------------------------------------------------
def why_zero(t: Tensor, consumers: dict, names, upstreams) -> str | None:
    """For a tensor whose gradient is zero (entirely, or in some elements), the gate that
    stopped it, in words; None when its gradient is not zero anywhere."""
    g = upstreams.get(id(t))
    if g is None:
        return None
    g = np.asarray(g)
    zero = g == 0
    if not zero.any():
        return None
    count = "" if zero.all() else f"{int(zero.sum())} of {zero.size} elements: "
    reasons = []
    for c in dict.fromkeys(consumers.get(id(t), [])):
        reason = _blocked_by(c, t, consumers, names, upstreams)
        if reason:
            reasons.append(reason)
    if not reasons:
        return count + "no gradient reached it from the output"
    return count + "; ".join(dict.fromkeys(reasons))


def _blocked_by(c: Tensor, t: Tensor, consumers, names, upstreams, depth=0) -> str | None:
    """Why ``c``, made from ``t``, sends ``t`` zeros: a gate of ``c`` itself, or (following
    ``c``'s own consumers) the zeros that ``c`` received."""
    up = upstreams.get(id(c))
    op, cname, tname = c._ctx.fn.name, names[id(c)], names[id(t)]
    x, y = np.asarray(t.data, dtype=np.float64), np.asarray(c.data, dtype=np.float64)
    if op == "relu" and np.any(x <= 0):
        return (f"the ReLU {cname} was off: its input {tname} = {format_value(x)} is <= 0, "
                "so its local gradient is 0" if x.size == 1 else
                f"the ReLU {cname} was off for {int(np.sum(x <= 0))} of {x.size} elements "
                "of its input (<= 0), where its local gradient is 0")
    if op in ("maximum", "minimum", "max", "min"):
        where = "its other input" if op in ("maximum", "minimum") else "the element that won"
        return f"{op} {cname} routed the gradient to {where}; {tname} lost, so it gets 0"
    if op in ("sigmoid", "tanh"):
        local = y * (1 - y) if op == "sigmoid" else 1 - y * y
        if np.any(local < 1e-6):
            return (f"the {op} {cname} is saturated: its output {format_value(y)} is flat "
                    f"there, local gradient {format_value(local)}")
    if op == "multiply" and any(p is not t and isinstance(p, Tensor) and np.any(p.data == 0)
                                or (not isinstance(p, Tensor) and np.all(np.asarray(p) == 0))
                                for p in parents_of(c)):
        return f"the multiply {cname}: the other input is 0, and multiply swaps"
    if op in ("linear", "matmul") and t is not parents_of(c)[0]:
        source = parents_of(c)[0]
        if isinstance(source, Tensor) and np.any(np.all(source.data == 0, axis=0)):
            return (f"{op} {cname}: a weight's gradient is made of its input "
                    f"{names[id(source)]}, which is 0 in every row for some units "
                    "(units that were off for every example)")
    if (up is None or np.any(np.asarray(up) == 0)) and depth < 20:
        for d in dict.fromkeys(consumers.get(id(c), [])):
            deeper = _blocked_by(d, c, consumers, names, upstreams, depth + 1)
            if deeper:
                return f"{cname} (made from {tname}) received zeros: {deeper}"
    if up is not None and np.any(np.asarray(up) != 0):
        return f"{op} {cname} has local gradient 0 with respect to {tname}"
    return None


# ----- Linear layers as one node ------------------------------------------------------------
def _linear_groups(order, names, node_of) -> list[dict]:
    """Each ``linear`` operation with its weight and bias leaves: one node when collapsed."""
    used_by: dict[int, int] = {}
    for t in order:
        for p in parents_of(t) or ():
            if isinstance(p, Tensor):
                used_by[id(p)] = used_by.get(id(p), 0) + 1
    groups = []
    for t in order:
        if t._ctx is None or t._ctx.fn.name != "linear":
            continue
        parents = [p for p in parents_of(t) if isinstance(p, Tensor)]
        members = [p for p in parents[1:] if p._ctx is None and used_by.get(id(p)) == 1]
        if not members:
            continue
        x = parents[0]
        shapes = ", ".join(f"{names[id(p)]} {tuple(p.shape)}" for p in members)
        groups.append({"op": node_of[id(t)], "members": [node_of[id(p)] for p in members],
                       "label": f"Linear {x.shape[-1]}\u2192{t.shape[-1]}",
                       "detail": f"input {tuple(x.shape)}, output {tuple(t.shape)}, {shapes}"})
    return groups


# ----- layout, as draw_graph lays it out -----------------------------------------------------
def _layout(graph) -> dict:
    sizes = {n.id: _node_size(n) for n in graph.nodes}
    texts = [(format_value(e.value), format_value(e.grad) if e.grad is not None else "")
             for e in graph.edges]
    label_sizes = [(max(text_width(a), text_width(b)) + 6, 10.0 + 12 * bool(a) + 12 * bool(b))
                   for a, b in texts]
    boxes, chains, columns, ports = layered_layout(sizes, [(e.src, e.dst) for e in graph.edges],
                                                   label_sizes)
    paths = _edge_points(boxes, chains, columns, ports, graph)
    ys = [b.y - b.h / 2 - b.top for b in boxes.values()]
    shift_y = MARGIN + LINE_H - min(ys)
    shift_x = MARGIN
    labels = []
    for chain in chains:
        if len(chain) > 2:
            b = boxes[chain[-2]]
            labels.append([round(b.x + shift_x, 1), round(b.y + shift_y, 1)])
        else:
            b0, b1 = boxes[chain[0]], boxes[chain[-1]]
            labels.append([round((b0.x + b1.x) / 2 + shift_x, 1),
                           round((b0.y + b1.y) / 2 + shift_y, 1)])
    out_boxes = {}
    for n in graph.nodes:
        b = boxes[n.id]
        out_boxes[n.id] = {"x": round(b.x + shift_x, 1), "y": round(b.y + shift_y, 1),
                           "w": round(b.w, 1), "h": round(b.h, 1),
                           "circle": n.kind == "op" and len(n.label) <= 2}
    moved = [[(x + shift_x, y + shift_y) for x, y in pts] for pts in paths]
    height = max(max(b.y + b.h / 2 for b in boxes.values()),
                 max((b.y + LINE_H + 4 for b in boxes.values()), default=0)) + shift_y + MARGIN
    return {"boxes": out_boxes, "paths": [edge_path(p) for p in moved],
            "labels": labels, "width": round(columns[-1][1] + 2 * MARGIN, 1),
            "height": round(height + LINE_H, 1)}


# ----- the page ------------------------------------------------------------------------------
def render_page(data: dict) -> str:
    """The HTML document: the page's template with ``data`` embedded as JSON."""
    page = resources.files(__package__).joinpath("player_page.html").read_text("utf-8")
    payload = json.dumps(data, separators=(",", ":"), default=json_default)
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
    return (page.replace("__TITLE__", html.escape(data["title"]))
                .replace("__DATA__", payload))




def write_expression_player(expression: str, values: dict, path) -> str:
    """The player of a small formula (what ``chainrule player`` writes); returns the path."""
    from .expr import parse_expression

    output, leaves = parse_expression(expression, values)
    player(output, path, title=expression,
           recompute=lambda: parse_expression(expression,
                                              {k: v.data for k, v in leaves.items()})[0])
    return os.fspath(path)
