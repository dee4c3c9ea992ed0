"""Tools that show backpropagation: graph drawings, step-by-step tables, expressions.

- ``draw_graph(output)``: the computational graph as SVG (or DOT text), every edge
  labelled with its forward value and the gradient flowing back along it.
- ``explain(output)``: the backward pass as a table, one row per node: value, local
  gradient, upstream gradient, downstream gradients and the gate's pattern
  (distributor, swapper, router, copy).
- ``player(output, path)``: one offline HTML page that steps through the forward and
  backward pass node by node (``chainrule.viz.player``).
- ``parse_expression("(x + y) * z", {"x": -2, ...})``: builds the graph of a small
  formula safely (nothing is evaluated by Python); ``parse_values("x=-2,y=5")``.
"""

from __future__ import annotations

import os

from .._io import atomic_write, atomic_write_text
from ..errors import ChainruleError
from ..tensor import Tensor
from .dot import graphviz_available, render_with_graphviz, to_dot
from .explain import Explanation, explain
from .expr import parse_expression, parse_values
from .graph import Graph, collect_graph
from .player import player
from .svg import render_svg, total_span

__all__ = ["GraphDrawing", "draw_graph", "explain", "Explanation", "parse_expression",
           "parse_values", "player"]

FORMATS = ("svg", "dot", "png", "pdf")
LAYOUTS = ("auto", "graphviz", "builtin")
_LAYOUT_ALIASES = {"python": "builtin"}  # the built-in layout's former name
MAX_DRAWN_NODES = 1000  # past this a drawing is unreadable, and slow to make
# Graphviz's time grows fast with long edges (x + x + ... + x): with "auto" it is used
# only while the edges' total length stays below this, and never for long.
GRAPHVIZ_MAX_SPAN, GRAPHVIZ_TIMEOUT = 600, 20.0


class GraphDrawing(str):
    """A rendered graph: the document's text itself (a ``str``), plus a little more.

    ``format`` is "svg" or "dot" (a PNG or PDF drawing is returned as its SVG); ``svg``
    is the SVG text (None for DOT text unless Graphviz can render it); Jupyter shows an
    SVG drawing inline (``_repr_svg_``);
    ``save(path)`` writes the text atomically; ``str(drawing)`` or ``print(drawing)``
    give the whole document, while ``repr`` stays one line.
    """

    format: str
    graph: Graph

    def __new__(cls, text: str, format: str, graph: Graph):
        obj = super().__new__(cls, text)
        obj.format, obj.graph = format, graph
        return obj

    @property
    def svg(self) -> str | None:
        if self.format == "svg":
            return str(self)
        return render_with_graphviz(str(self))

    def _repr_svg_(self):
        return self.svg

    def __repr__(self):
        return (f"<GraphDrawing {self.format}: {len(self.graph.nodes)} nodes, "
                f"{len(self.graph.edges)} edges, {len(self)} characters>")

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def __reduce__(self):
        return (str, (str(self),))

    def save(self, path) -> str:
        """Write the document to ``path`` (replacing it atomically); returns the path."""
        atomic_write_text(path, str(self))
        return os.fspath(path)


def draw_graph(output, path=None, format=None, show_grad=True, show_values=True,
               layout="auto", names=None) -> GraphDrawing:
    """Draw the computational graph that produced ``output``.

    Leaves are boxes with their ``name`` (a model's parameters: their names in
    ``named_parameters()``; the batch a model was called on: X; others x0, x1...; see
    ``names``), operations circles with their
    symbol (+, *, @, σ...), constants dashed boxes. Each edge shows the forward value it
    carries above it (numbers in full, arrays as shape, mean and std) and, with
    ``show_grad``, the gradient flowing back along it below it. Gradients of every node
    come from a backward pass of its own on the still-alive graph (no ``.grad`` is
    touched; for a non-scalar output, the gradients of ``output.sum()``). After a
    ``backward()`` that released the graph only the leaves' ``.grad`` can be shown, and
    the caption says so.

    Args:
        output: the Tensor whose graph to draw.
        path: if given, the document is also written there (atomically).
        format: "svg" (a standalone drawing), "dot" (Graphviz source text), or "png" /
            "pdf" (written to ``path``, which they need; matplotlib draws the built-in
            layout, Graphviz its own). Default: the extension of ``path``, else "svg".
        show_grad, show_values: which edge labels to write.
        layout: "auto" (Graphviz's ``dot`` when it is installed, else the built-in
            layout), "graphviz" or "builtin". Both show the same labels and caption.
        names: labels for tensors or arrays in the graph, {label: tensor, array or Module}
            (a Module labels its parameters "<label>.<name>").

    Returns: a ``GraphDrawing``, the document as a string (shown inline by Jupyter).
    """
    if not isinstance(output, Tensor):
        raise ChainruleError(f"draw_graph: expected a Tensor, got {type(output).__name__}")
    if format is None:
        suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".") if path else ""
        format = suffix if suffix in FORMATS else "svg"
    if format not in FORMATS:
        raise ChainruleError(f"draw_graph: format must be one of {', '.join(FORMATS)}, "
                             f"not {format!r}")
    layout = _LAYOUT_ALIASES.get(layout, layout)
    if layout not in LAYOUTS:
        raise ChainruleError(f"draw_graph: layout must be one of {', '.join(LAYOUTS)}, "
                             f"not {layout!r}")
    if layout == "graphviz" and not graphviz_available():
        raise ChainruleError("draw_graph: layout='graphviz' needs Graphviz's 'dot' program on "
                             "the PATH; use layout='builtin' (or 'auto') instead")
    if format in ("png", "pdf") and path is None:
        raise ChainruleError(f"draw_graph: format={format!r} needs a path to write to")
    graph = collect_graph(output, show_grad=show_grad, names=names)
    if len(graph.nodes) > MAX_DRAWN_NODES:
        raise ChainruleError(f"draw_graph: the graph has {len(graph.nodes)} nodes, too many "
                             f"to draw (the limit is {MAX_DRAWN_NODES}); explain(output) "
                             "(`chainrule explain` on the command line) shows it as a table")
    dot_text = to_dot(graph, show_values, show_grad)
    if format == "dot":
        drawing = GraphDrawing(dot_text, "dot", graph)
        if path is not None:
            drawing.save(path)
        return drawing
    use_graphviz = layout == "graphviz" or (layout == "auto" and graphviz_available()
                                            and total_span(graph) <= GRAPHVIZ_MAX_SPAN)
    text = render_with_graphviz(dot_text, timeout=GRAPHVIZ_TIMEOUT) if use_graphviz else None
    drawing = GraphDrawing(text or render_svg(graph, show_values, show_grad), "svg", graph)
    if path is None:
        return drawing
    if format == "svg":
        drawing.save(path)
    else:
        image = (render_with_graphviz(dot_text, GRAPHVIZ_TIMEOUT, output_format=format)
                 if text else None)
        if image is None:  # the built-in layout, drawn by matplotlib
            from .raster import svg_to_image

            image = svg_to_image(render_svg(graph, show_values, show_grad), format)
        with atomic_write(path, "wb") as f:
            f.write(image)
    return drawing
