"""A computational graph drawn as SVG in pure Python: a layered layout, left to right.

The layout takes four classic steps, each small: (1) ranks: every box as far right as its
consumers allow (a leaf just left of its first consumer), the output last; between two
columns of boxes sits a column of edge labels, and an edge spanning several columns
passes through invisible points in each, so it can run between boxes (a very long
edge only in the columns at its ends, which keeps the layout near-linear); (2) the order
inside each column, by barycenter sweeps (a box moves to the mean position of its
neighbours) and swaps of neighbours, keeping the order with the fewest crossings;
(3) heights: each box as close as possible to the mean of its neighbours while the boxes
of a column stay apart (an isotonic regression, solved exactly by pooling adjacent
violators); (4) edges as smooth curves, straight where they cross a column. Sizes come
from text lengths in a monospace font; the SVG needs no external resource.

As in the lecture's diagrams, every edge carries its forward value above it (green) and
the gradient flowing back along it below it (red).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .graph import Graph, format_value

FONT = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
CHAR_W = 7.3  # width of a 12 px monospace character (0.6 em, rounded up)
LINE_H = 15
BOX_GAP = 12  # vertical room between boxes of a column
COL_GAP = 34  # horizontal room between columns, where edges bend
MARGIN = 20
LONG_EDGE = 8  # an edge spanning more ranks gets bend points only at its two ends
VALUE_COLOR, GRAD_COLOR, EDGE_COLOR = "#1a7f37", "#c62828", "#6b7280"
STYLE = {  # kind -> (fill, stroke)
    "leaf": ("#e8f0fe", "#3b6bb0"),
    "op": ("#fff4d6", "#b7862b"),
    "const": ("#f3f4f6", "#9ca3af"),
    "output": ("#ffffff", "#6b7280"),
}


@dataclass
class Box:
    w: float
    h: float
    rank: int
    top: float = 0.0  # room above the box for a name tag
    x: float = 0.0  # centre
    y: float = 0.0
    dummy: bool = False


def text_width(text: str) -> float:
    return len(text) * CHAR_W


# ----- layout ----------------------------------------------------------------------------
def layered_layout(sizes: dict, edges: list, label_sizes: list):
    """Boxes for ``sizes`` (id -> (w, h, top); ids in topological order) joined by
    ``edges`` ((src, dst) pairs; a box's incoming edges in the order of its input ports,
    top to bottom); ``label_sizes[i]`` is the (w, h) of edge i's labels.

    Returns (boxes: id -> Box, chains: per edge the ids it passes through, the one
    before last being its label's box, columns: (left, right) x of each column, ports: per edge the
    height of its input port relative to its target's centre). Boxes of the graph are
    in even columns, labels and the points of long edges in the odd ones between.
    """
    ids = list(sizes)
    rank = _ranks(ids, edges)
    boxes = {i: Box(sizes[i][0], sizes[i][1], 2 * rank[i], top=sizes[i][2]) for i in ids}
    chains, incoming = [], {}
    for k, (s, d) in enumerate(edges):
        chain = [s]
        first, last = 2 * rank[s] + 1, 2 * rank[d] - 1
        for r in range(first, last + 1):
            if last - first > 2 * LONG_EDGE and r not in (first, last):
                continue  # a long edge runs straight across: points in every column
                # would make x + x + ... + x quadratic in size
            w, h = label_sizes[k] if r == last else (0.0, 10.0)
            boxes[("via", k, r)] = Box(w, h, r, dummy=True)
            chain.append(("via", k, r))
        chains.append(chain + [d])
        incoming.setdefault(d, []).append(k)
    ports, port_of = [0.0] * len(edges), {}  # port_of: (via, target) -> (slot frac, dy)
    for d, ks in incoming.items():
        step = min(10.0, (boxes[d].h - 10) / max(len(ks) - 1, 1))
        for i, k in enumerate(ks):
            ports[k] = (i - (len(ks) - 1) / 2) * step
            port_of[(chains[k][-2], d)] = ((i + 1) / (len(ks) + 1) - 0.5, ports[k])
    preds, succs = {b: [] for b in boxes}, {b: [] for b in boxes}
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            succs[a].append(b)
            preds[b].append(a)
    layers = _order(boxes, chains, ids, preds, succs, port_of)
    columns = _x_positions(boxes, layers)
    _y_positions(boxes, layers, preds, succs, port_of)
    return boxes, chains, columns, ports


def total_span(graph: Graph) -> int:
    """The summed length (in ranks) of the graph's edges: what a layered layout that
    keeps a point per column, as Graphviz's ``dot`` does, must place."""
    rank = _ranks([n.id for n in graph.nodes], [(e.src, e.dst) for e in graph.edges])
    return sum(rank[e.dst] - rank[e.src] for e in graph.edges)


def _ranks(ids, edges) -> dict:
    preds, succs = {i: [] for i in ids}, {i: [] for i in ids}
    for s, d in edges:
        preds[d].append(s)
        succs[s].append(d)
    rank = {}
    for i in ids:
        rank[i] = 1 + max((rank[p] for p in preds[i]), default=-1)
    for i in reversed(ids):  # then as late as possible: a leaf just left of its first use
        if succs[i]:
            rank[i] = min(rank[s] for s in succs[i]) - 1
    return rank


def _order(boxes, chains, ids, preds, succs, port_of) -> list[list]:
    """Columns top to bottom: barycenter sweeps, then swaps of neighbours that help."""
    layers = [[] for _ in range(1 + max(b.rank for b in boxes.values()))]
    seen = set()
    for b in [i for chain in chains for i in chain] + ids:  # order of first appearance
        if b not in seen:
            seen.add(b)
            layers[boxes[b].rank].append(b)

    def count(layers_):
        return sum(_crossings(u, lo, succs, port_of) for u, lo in zip(layers_, layers_[1:]))

    best, best_cross = [list(layer) for layer in layers], count(layers)
    for sweep in range(12 if len(boxes) < 400 else 3):
        down = sweep % 2 == 0
        for r in range(1, len(layers)) if down else range(len(layers) - 2, -1, -1):
            where = {b: k for k, b in enumerate(layers[r - 1] if down else layers[r + 1])}
            keys = []
            for k, b in enumerate(layers[r]):
                if down:
                    ps = [where[n] for n in preds[b] if n in where]
                else:
                    ps = [where[n] + port_of.get((b, n), (0.0,))[0] for n in succs[b]
                          if n in where]
                keys.append(sum(ps) / len(ps) if ps else float(k))
            layers[r] = [b for _, _, b in sorted(zip(keys, range(len(keys)), layers[r]))]
        cross = count(layers)
        if cross < best_cross:
            best, best_cross = [list(layer) for layer in layers], cross
    if len(boxes) < 400:
        _swap_neighbours(best, succs, port_of)
    return best


def _swap_neighbours(layers, succs, port_of):
    """Swap two neighbours of a column wherever that removes crossings, until none does."""
    def local(r):
        total = _crossings(layers[r - 1], layers[r], succs, port_of) if r > 0 else 0
        if r + 1 < len(layers):
            total += _crossings(layers[r], layers[r + 1], succs, port_of)
        return total

    for _ in range(8):
        improved = False
        for r, layer in enumerate(layers):
            for i in range(len(layer) - 1):
                before = local(r)
                layer[i], layer[i + 1] = layer[i + 1], layer[i]
                if local(r) < before:
                    improved = True
                else:
                    layer[i], layer[i + 1] = layer[i + 1], layer[i]
        if not improved:
            return


def _crossings(upper, lower, succs, port_of) -> int:
    where = {b: k for k, b in enumerate(lower)}
    pairs = sorted((k, where[s] + port_of.get((b, s), (0.0,))[0])
                   for k, b in enumerate(upper) for s in succs[b] if s in where)
    # sorted by (source, target): crossings are the inversions of the targets' positions
    total, seen = 0, []
    for j, (_, b) in enumerate(pairs):
        total += j - bisect.bisect_right(seen, b)
        bisect.insort(seen, b)
    return total


def _x_positions(boxes, layers):
    columns, x = [], 0.0
    for layer in layers:
        width = max((boxes[b].w for b in layer), default=0.0)
        columns.append((x, x + width))
        for b in layer:
            boxes[b].x = x + width / 2
        x += width + COL_GAP
    return columns


def _y_positions(boxes, layers, preds, succs, port_of):
    seps = []
    for layer in layers:
        bs = [boxes[b] for b in layer]
        seps.append([(a.h + b.h) / 2 + b.top + BOX_GAP for a, b in zip(bs, bs[1:])])
    # (neighbour, offset): a target lines up each input port with the edge feeding it
    ins = {b: [(n, -port_of.get((n, b), (0, 0.0))[1]) for n in preds[b]] for b in boxes}
    outs = {b: [(n, port_of.get((b, n), (0, 0.0))[1]) for n in succs[b]] for b in boxes}
    for layer, sep in zip(layers, seps):
        for b, y in zip(layer, _fit_ordered([0.0] * len(layer), sep)):
            boxes[b].y = y
    for sweep in range(18 if len(boxes) < 3000 else 6):
        mode = sweep % 3  # 0: towards inputs, 1: towards consumers, 2: both
        for r in range(len(layers)) if mode != 1 else range(len(layers) - 1, -1, -1):
            desired = []
            for b in layers[r]:
                near = (ins[b], outs[b], ins[b] + outs[b])[mode]
                desired.append(sum(boxes[n].y + off for n, off in near) / len(near) if near
                               else boxes[b].y)
            for b, y in zip(layers[r], _fit_ordered(desired, seps[r])):
                boxes[b].y = y


def _fit_ordered(desired, seps):
    """Positions closest (least squares) to ``desired`` with ``y[i+1] - y[i] >= seps[i]``.

    Subtracting the cumulative separations turns this into isotonic regression, which
    pooling adjacent violators solves exactly in linear time.
    """
    offsets = [0.0]
    for s in seps:
        offsets.append(offsets[-1] + s)
    blocks = []  # [mean, count]
    for d, o in zip(desired, offsets):
        blocks.append([d - o, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    fitted = [m for m, c in blocks for _ in range(c)]
    return [f + o for f, o in zip(fitted, offsets)]


# ----- drawing ---------------------------------------------------------------------------
def render_svg(graph: Graph, show_values: bool = True, show_grad: bool = True) -> str:
    """The graph as a standalone SVG document (white background, system fonts only)."""
    sizes = {n.id: _node_size(n) for n in graph.nodes}
    texts = [(format_value(e.value) if show_values else "",
              format_value(e.grad) if show_grad and e.grad is not None else "")
             for e in graph.edges]
    label_sizes = [(max(text_width(a), text_width(b)) + 6, 10.0 + 12 * bool(a) + 12 * bool(b))
                   for a, b in texts]
    edges = [(e.src, e.dst) for e in graph.edges]
    boxes, chains, columns, ports = layered_layout(sizes, edges, label_sizes)
    paths = _edge_points(boxes, chains, columns, ports, graph)
    labels = [(boxes[chain[-2]].x, boxes[chain[-2]].y, *text)
              for chain, text in zip(chains, texts) if len(chain) > 2 and any(text)]
    shift_y = MARGIN + LINE_H - min(min(b.y - b.h / 2 - b.top for b in boxes.values()),
                                    min((y - LINE_H for _, y, _, _ in labels), default=0))
    body = _draw(graph, boxes, paths, labels)
    content_h = max(max(b.y + b.h / 2 for b in boxes.values()),
                    max((y + LINE_H + 2 for _, y, _, _ in labels), default=0)) + shift_y
    caption = caption_lines(graph, show_values, show_grad)
    width = max(columns[-1][1] + 2 * MARGIN,
                max((text_width(t) for t in caption), default=0) * 11 / 12 + 2 * MARGIN)
    height = content_h + MARGIN + LINE_H * len(caption) + MARGIN / 2
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}" font-size="12">',
        "<title>chainrule computational graph</title>",
        '<defs><marker id="cr-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,1 L10,5 L0,9 z" fill="{EDGE_COLOR}"/>'
        "</marker></defs>",
        '<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>',
        f'<g transform="translate({MARGIN},{shift_y:.1f})">', *body, "</g>",
    ]
    y = content_h + MARGIN
    for text in caption:
        lines.append(f'<text x="{MARGIN}" y="{y:.1f}" font-size="11" fill="#374151">'
                     f"{escape(text)}</text>")
        y += LINE_H
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _node_size(node):
    w = text_width(node.label)
    top = LINE_H if node.name else 0.0
    if node.kind == "op":
        return (34.0, 34.0, top) if len(node.label) <= 2 else (w + 24, 30.0, top)
    return (w + 20, 28.0 if node.kind != "output" else 26.0, top)


def _edge_points(boxes, chains, columns, ports, graph):
    """Each edge's points: out of its source's right side, straight across the columns
    of its label and bends, into its input port on its target's left side."""
    paths = []
    for k, chain in enumerate(chains):
        src, dst = boxes[chain[0]], boxes[chain[-1]]
        pts = [(src.x + src.w / 2, src.y)]
        for d in chain[1:-1]:
            left, right = columns[boxes[d].rank]
            pts += [(left, boxes[d].y), (right, boxes[d].y)]
        half, dy = dst.w / 2, ports[k]
        node = graph.nodes[chain[-1]]
        if node.kind == "op" and len(node.label) <= 2:
            half = (max(half**2 - dy**2, 0.0)) ** 0.5  # on the circle
        paths.append(pts + [(dst.x - half, dst.y + dy)])
    return paths


def _draw(graph, boxes, paths, labels) -> list[str]:
    out = []
    for pts in paths:
        out.append(f'<path d="{edge_path(pts)}" fill="none" stroke="{EDGE_COLOR}" '
                   'stroke-width="1.3" marker-end="url(#cr-arrow)"/>')
    for node in graph.nodes:
        out.extend(_draw_node(node, boxes[node.id]))
    halo = 'stroke="#ffffff" stroke-width="3" paint-order="stroke"'
    for x, y, value, grad in labels:
        if value:
            out.append(f'<text x="{x:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                       f'fill="{VALUE_COLOR}" {halo}>{escape(value)}</text>')
        if grad:
            out.append(f'<text x="{x:.1f}" y="{y + 13:.1f}" text-anchor="middle" '
                       f'fill="{GRAD_COLOR}" {halo}>{escape(grad)}</text>')
    return out


def edge_path(pts) -> str:
    """An edge's points as the ``d`` of an SVG path: smooth bends between columns."""
    # a run at one height is one straight segment, however many columns it crosses
    pts = [p for i, p in enumerate(pts)
           if i in (0, len(pts) - 1)
           or abs(pts[i - 1][1] - p[1]) + abs(pts[i + 1][1] - p[1]) > 0.1]
    d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        dx = (x1 - x0) / 2
        d += f" C{x0 + dx:.1f},{y0:.1f} {x1 - dx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
    return d


def _draw_node(node, box) -> list[str]:
    fill, stroke = STYLE[node.kind]
    x, y, w, h = box.x, box.y, box.w, box.h
    out = [f"<g><title>{escape(node.info or node.label)}</title>"]
    if node.kind == "op" and len(node.label) <= 2:
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{w / 2:.1f}" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="1.5"/>')
    else:
        rx = h / 2 if node.kind == "op" else 5
        dash = ' stroke-dasharray="4,3"' if node.kind in ("const", "output") else ""
        out.append(f'<rect x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" '
                   f'height="{h:.1f}" rx="{rx}" fill="{fill}" stroke="{stroke}" '
                   f'stroke-width="1.5"{dash}/>')
    weight = ' font-weight="bold"' if node.kind in ("op", "output") else ""
    size = ' font-size="15"' if node.kind == "op" and len(node.label) <= 2 else ""
    out.append(f'<text x="{x:.1f}" y="{y + 4.5:.1f}" text-anchor="middle" fill="#111827"'
               f"{weight}{size}>{escape(node.label)}</text>")
    if node.name:
        out.append(f'<text x="{x:.1f}" y="{y - h / 2 - 5:.1f}" text-anchor="middle" '
                   f'fill="#4b5563" font-style="italic">{escape(node.name)}</text>')
    out.append("</g>")
    return out


def caption_lines(graph, show_values: bool, show_grad: bool) -> list[str]:
    """The legend, then the graph's notes (how its gradients were obtained)."""
    legend = []
    if show_values:
        legend.append("green: forward value")
    if show_grad:
        legend.append(("red, under it: " if show_values else "red: ")
                      + "gradient d output / d value (backward)")
    return (["; ".join(legend)] if legend else []) + list(graph.notes)
