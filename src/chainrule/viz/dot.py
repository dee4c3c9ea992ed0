"""The computational graph as Graphviz DOT text, and rendering it where Graphviz is installed.

``to_dot`` needs nothing but Python; ``render_with_graphviz`` runs the ``dot`` program
(``dot -Tsvg``) only when it is on the PATH and returns None otherwise, so callers can
fall back to the pure-Python layout of ``svg``.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap

from .graph import Graph, format_value
from .svg import EDGE_COLOR, GRAD_COLOR, STYLE, VALUE_COLOR, caption_lines

CAPTION_WIDTH = 40  # characters per caption line


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def to_dot(graph: Graph, show_values: bool = True, show_grad: bool = True) -> str:
    """DOT text for ``graph``, left to right; edges labelled value (green) over gradient (red).

    Node ids are ``n0``, ``n1``... in the graph's order; every node and edge of the graph
    appears once.
    """
    lines = [
        "digraph chainrule {",
        '  graph [rankdir=LR, bgcolor="white", nodesep=0.35, ranksep=0.6, pad=0.25, '
        'fontname="Helvetica", fontsize=10, labeljust=l];',
        '  node [fontname="Helvetica", fontsize=12, width=0.3, height=0.3, '
        'margin="0.1,0.05"];',
        f'  edge [fontname="Helvetica", fontsize=10, color="{EDGE_COLOR}", arrowsize=0.7];',
    ]
    for node in graph.nodes:
        fill, stroke = STYLE[node.kind]
        if node.kind == "op":
            shape = "circle" if len(node.label) <= 2 else "box"
            style = '"filled"' if shape == "circle" else '"rounded,filled"'
        else:
            shape = "box"
            style = '"rounded,filled,dashed"' if node.kind in ("const", "output") else \
                '"rounded,filled"'
        xlabel = f", xlabel={_quote(node.name)}" if node.name else ""
        lines.append(
            f"  n{node.id} [label={_quote(node.label)}, shape={shape}, style={style}, "
            f'fillcolor="{fill}", color="{stroke}", tooltip={_quote(node.info or node.label)}'
            f"{xlabel}];"
        )
    for edge in graph.edges:
        parts = []
        if show_values:
            parts.append(f'<font color="{VALUE_COLOR}">{_html(format_value(edge.value))}</font>')
        if show_grad and edge.grad is not None:
            parts.append(f'<font color="{GRAD_COLOR}">{_html(format_value(edge.grad))}</font>')
        label = f", label=<{'<br/>'.join(parts)}>" if parts else ""
        lines.append(f"  n{edge.src} -> n{edge.dst} [tooltip={_quote(f'input {edge.slot}')}"
                     f"{label}];")
    # Short lines: Graphviz sizes the drawing with its own font metrics, and a viewer's
    # wider font would otherwise push a long caption past the edge.
    caption = [part for line in caption_lines(graph, show_values, show_grad)
               for part in textwrap.wrap(line, CAPTION_WIDTH)]
    if caption:
        text = "".join(_quote(line)[1:-1] + "\\l" for line in caption)  # \l: left-aligned
        lines.append(f'  label="{text}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render_with_graphviz(dot_text: str, timeout: float = 60.0, output_format: str = "svg"):
    """SVG text from Graphviz's ``dot -Tsvg`` (bytes for ``output_format`` "png" or "pdf"),
    or None if ``dot`` is missing or fails."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, f"-T{output_format}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or not done.stdout:
        return None
    if output_format != "svg":
        return done.stdout
    return done.stdout.decode("utf-8", errors="replace")
