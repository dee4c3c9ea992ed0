"""Tools that show backpropagation: graph drawings, step-by-step tables, expressions.

- ``draw_graph(output)``: the computational graph as SVG (or DOT text), every edge
  labelled with its forward value and the gradient flowing back along it.
- ``explain(output)``: the backward pass as a table, one row per node: value, local
  gradient, upstream gradient, downstream gradients and the gate's pattern
  (distributor, swapper, router, copy).
- ``parse_expression("(x + y) * z", {"x": -2, ...})``: builds the graph of a small
  formula safely (nothing is evaluated by Python); ``parse_values("x=-2,y=5")``.
"""

from __future__ import annotations

import os

from .._io import atomic_write_text
from ..errors import ChainruleError
from ..tensor import Tensor
from .dot import graphviz_available, render_with_graphviz, to_dot
from .explain import Explanation, explain
from .expr import parse_expression, parse_values
from .graph import Graph, collect_graph
from .svg import render_svg, total_span

__all__ = ["GraphDrawing", "draw_graph", "explain", "Explanation", "parse_expression",
           "parse_values"]

FORMATS = ("svg", "dot")
LAYOUTS = ("auto", "graphviz", "python")
MAX_DRAWN_NODES = 1000  # past this a drawing is unreadable, and slow to make
# Graphviz's time grows fast with long edges (x + x + ... + x): with "auto" it is used
# only while the edges' total length stays below this, and never for long.
GRAPHVIZ_MAX_SPAN, GRAPHVIZ_TIMEOUT = 600, 20.0


class GraphDrawing(str):
    """A rendered graph: the document's text itself (a ``str``), plus a little more.

    ``format`` is "svg" or "dot"; ``svg`` is the SVG text (None for DOT text unless
    Graphviz can render it); Jupyter shows an SVG drawing inline (``_repr_svg_``);
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


def draw_graph(output, path=None, format="svg", show_grad=True, show_values=True,
               layout="auto") -> GraphDrawing:
    """Draw the computational graph that produced ``output``.

    Leaves are boxes with their ``name`` (or x0, x1...), operations circles with their
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
        format: "svg" (a standalone drawing) or "dot" (Graphviz source text).
        show_grad, show_values: which edge labels to write.
        layout: for SVG, "auto" (Graphviz's ``dot`` when it is installed, else the
            built-in layout), "graphviz" or "python".

    Returns: a ``GraphDrawing``, the document as a string (shown inline by Jupyter).
    """
    if not isinstance(output, Tensor):
        raise ChainruleError(f"draw_graph: expected a Tensor, got {type(output).__name__}")
    if format not in FORMATS:
        raise ChainruleError(f"draw_graph: format must be one of {', '.join(FORMATS)}, "
                             f"not {format!r}")
    if layout not in LAYOUTS:
        raise ChainruleError(f"draw_graph: layout must be one of {', '.join(LAYOUTS)}, "
                             f"not {layout!r}")
    if layout == "graphviz" and not graphviz_available():
        raise ChainruleError("draw_graph: layout='graphviz' needs Graphviz's 'dot' program on "
                             "the PATH; use layout='python' (or 'auto') instead")
    graph = collect_graph(output, show_grad=show_grad)
    if len(graph.nodes) > MAX_DRAWN_NODES:
        raise ChainruleError(f"draw_graph: the graph has {len(graph.nodes)} nodes, too many "
                             f"to draw (the limit is {MAX_DRAWN_NODES}); explain(output) "
                             "(`chainrule explain` on the command line) shows it as a table")
    if format == "dot":
        text = to_dot(graph, show_values, show_grad)
    else:
        text = None
        if layout == "graphviz" or (layout == "auto" and graphviz_available()
                                    and total_span(graph) <= GRAPHVIZ_MAX_SPAN):
            text = render_with_graphviz(to_dot(graph, show_values, show_grad),
                                        timeout=GRAPHVIZ_TIMEOUT)
        if text is None:
            text = render_svg(graph, show_values, show_grad)
    drawing = GraphDrawing(text, format, graph)
    if path is not None:
        drawing.save(path)
    return drawing
