"""Shared plumbing for the plots: a pyplot-free figure, atomic saving, small conversions."""

import functools
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..errors import ChainruleError

_FORMATS = {"": "png", ".png": "png", ".svg": "svg", ".pdf": "pdf"}
DPI = 100


@functools.cache
def _figure_class():
    from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        """A Figure that Jupyter shows inline as PNG, with or without pyplot."""

        def _repr_png_(self):
            import io

            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=DPI)
            return buffer.getvalue()

    return NotebookFigure


def new_figure(width, height):
    """A Figure attached to an Agg canvas of ``width`` x ``height`` inches."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure  # noqa: F401  (fails here when missing)
    except ImportError as exc:
        raise ChainruleError(
            'plotting needs matplotlib; install it with: pip install "chainrule[plot]"'
        ) from exc
    fig = _figure_class()(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path):
    """Write ``fig`` atomically in the format its suffix names (PNG if none); return the path.
    Without a path, return the figure itself (a notebook shows it inline)."""
    if path is None:
        return fig
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ChainruleError(f"cannot write a plot to {path}: use a .png, .svg or .pdf name")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=DPI)
    return path


def as_array(a, dtype=None):
    """NumPy view of an array, a chainrule Tensor or a torch tensor."""
    if hasattr(a, "detach"):
        a = a.detach()
    if hasattr(a, "cpu"):
        a = a.cpu()
    return np.asarray(a, dtype=dtype)


def series(rows, key):
    """Values of ``key`` per row as floats, NaN where missing or None."""
    values = [row.get(key) for row in rows]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def class_colours(n):
    """(dark, light) RGB arrays of shape (n, 3): dark for points, light for regions."""
    from matplotlib import colormaps

    if n <= 10:
        dark = np.array(colormaps["tab10"].colors[:n])
    else:
        dark = colormaps["hsv"](np.linspace(0, 1, n, endpoint=False))[:, :3] * 0.85
    light = 0.35 * dark + 0.65  # blend towards white
    return dark, light


def markers(n_points):
    return "o" if n_points <= 30 else None


def epoch_axis(ax, epochs):
    """Label the x axis with whole epochs, with room around a lone first epoch."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    known = epochs[~np.isnan(epochs)]
    if known.size and known.max() - known.min() < 1:
        ax.set_xlim(known.min() - 1, known.max() + 1)
