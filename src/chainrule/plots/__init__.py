"""The pictures training produces: curves, decision regions, weight templates, diagnostics.

Each function draws one figure and writes it to ``path`` (PNG, or SVG/PDF by suffix),
atomically, and returns the path as a ``pathlib.Path``; missing parent directories are
created. Without a path it returns the matplotlib ``Figure``, which a notebook shows
inline. matplotlib is an optional extra (``pip install "chainrule[plot]"``); it is imported
only when a function is called, and figures are drawn on matplotlib's Agg canvas directly
rather than through ``pyplot``, so no global state changes and an interactive backend a
user has chosen is left alone.
"""

from .models import plot_boundary, plot_jacobian, plot_templates
from .training import plot_curves, plot_diagnostics

__all__ = ["plot_boundary", "plot_curves", "plot_diagnostics", "plot_jacobian", "plot_templates"]
