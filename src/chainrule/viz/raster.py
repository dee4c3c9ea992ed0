"""The built-in SVG drawing as PNG or PDF, through matplotlib (no system program needed).

``render_svg`` writes a small, fixed vocabulary: rectangles, circles, paths of cubic
curves ending in an arrow, and text, inside one translated group. This module reads that
vocabulary back (our own document, never a user's file) and draws the same shapes on a
matplotlib canvas one pixel per unit, so the PNG and the PDF match the SVG.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

from ..errors import ChainruleError

_NS = "{http://www.w3.org/2000/svg}"
DPI = 100
PT_PER_PX = 72 / DPI  # SVG font sizes are pixels, matplotlib's points


def _floats(text):
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text or "")]


def svg_to_image(svg_text: str, format: str) -> bytes:
    """PNG or PDF bytes of an SVG document written by ``render_svg``."""
    try:
        import matplotlib.patheffects as effects
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, PathPatch
        from matplotlib.path import Path as MplPath
    except ImportError:
        raise ChainruleError('drawing a graph as PNG or PDF needs matplotlib; install it with: '
                             'pip install "chainrule[plot]" (or write .svg)') from None
    root = ET.fromstring(svg_text)
    width, height = float(root.get("width")), float(root.get("height"))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # SVG's y grows downwards
    ax.set_axis_off()
    base_size = float(root.get("font-size", 12))

    def walk(element, dx, dy):
        for child in element:
            tag = child.tag.replace(_NS, "")
            if tag == "g":
                shift = _floats(child.get("transform")) if child.get("transform") else [0, 0]
                walk(child, dx + shift[0], dy + shift[1])
            elif tag == "rect" and child.get("width") != "100%":
                x, y = float(child.get("x")) + dx, float(child.get("y")) + dy
                w, h = float(child.get("width")), float(child.get("height"))
                r = min(float(child.get("rx", 0)), h / 2, w / 2)
                dashed = child.get("stroke-dasharray") is not None
                ax.add_patch(FancyBboxPatch(
                    (x + r, y + r), w - 2 * r, h - 2 * r, boxstyle=f"round,pad={r}",
                    facecolor=child.get("fill"), edgecolor=child.get("stroke"),
                    linewidth=float(child.get("stroke-width", 1)) * PT_PER_PX,
                    linestyle=(0, (4, 3)) if dashed else "-"))
            elif tag == "circle":
                ax.add_patch(Circle(
                    (float(child.get("cx")) + dx, float(child.get("cy")) + dy),
                    float(child.get("r")), facecolor=child.get("fill"),
                    edgecolor=child.get("stroke"),
                    linewidth=float(child.get("stroke-width", 1)) * PT_PER_PX))
            elif tag == "path" and child.get("marker-end"):
                values = _floats(child.get("d"))
                points = [(values[i] + dx, values[i + 1] + dy) for i in range(0, len(values), 2)]
                codes = [MplPath.MOVETO] + [MplPath.CURVE4] * (len(points) - 1)
                colour = child.get("stroke")
                width_pt = float(child.get("stroke-width", 1)) * PT_PER_PX
                ax.add_patch(PathPatch(MplPath(points, codes), facecolor="none",
                                       edgecolor=colour, linewidth=width_pt))
                (x0, y0), (x1, y1) = points[-2], points[-1]
                ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>",
                                             mutation_scale=9, color=colour, linewidth=0,
                                             shrinkA=0, shrinkB=0))
            elif tag == "text":
                size = float(child.get("font-size", base_size))
                halo = child.get("paint-order") == "stroke"
                ax.text(float(child.get("x")) + dx, float(child.get("y")) + dy, child.text or "",
                        ha={"middle": "center", "end": "right"}.get(
                            child.get("text-anchor"), "left"),
                        va="baseline", color=child.get("fill", "#000000"),
                        fontsize=size * PT_PER_PX, family="monospace",
                        fontweight=child.get("font-weight", "normal"),
                        fontstyle=child.get("font-style", "normal"),
                        path_effects=[effects.withStroke(linewidth=3 * PT_PER_PX,
                                                         foreground="white")] if halo else None)

    ax.add_patch(FancyBboxPatch((0, 0), width, height, boxstyle="square,pad=0",
                                facecolor="white", edgecolor="none", zorder=-1))
    walk(root, 0.0, 0.0)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=format, dpi=DPI, facecolor="white")
    return buffer.getvalue()
