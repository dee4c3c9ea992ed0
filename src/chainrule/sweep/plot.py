"""``sweep.png``: CS231n's picture of a hyperparameter search.

Each trial is a dot at (its learning rate, its regularization strength), both on log
scales, coloured by its validation accuracy; a second panel colours the same dots by
training accuracy, so over- and under-fitting regions show side by side. When lr or reg is
not searched, the first two searched numeric options take their places; with one, the
y axis is the accuracy itself. Trials that diverged or failed are grey crosses; the best
is ringed.
"""

from __future__ import annotations

import math

import numpy as np

from ..plots._figure import new_figure, save


def _axes_options(spaces: dict) -> list[str]:
    numeric = [name for name, space in spaces.items()
               if hasattr(space, "log") or all(isinstance(v, int | float) and
                                               not isinstance(v, bool)
                                               for v in getattr(space, "values", ["x"]))]
    preferred = [name for name in ("lr", "reg") if name in numeric]
    return (preferred + [n for n in numeric if n not in preferred])[:2]


def _is_log(space) -> bool:
    if hasattr(space, "log"):
        return space.log
    values = [v for v in space.values if v > 0]
    return len(values) == len(space.values) and max(values) / min(values) >= 100


# Where the panels and their colour bars sit, in fractions of the figure (left, bottom,
# width, height): fixed rather than laid out at draw time, which would measure every tick
# label first and take as long as the drawing itself.
PANELS = ((0.072, 0.115, 0.318, 0.81), (0.572, 0.115, 0.318, 0.81))
COLOUR_BAR = (0.016, 0.018)  # gap after a panel, width


def prepare_drawing():
    """Do ahead what drawing the first picture costs besides the picture: import the parts
    of matplotlib that ``plot_sweep`` uses, load the font and build the parser of the log
    axes' tick labels (a few tenths of a second in all), by drawing a small picture of the
    same kind to memory."""
    import io

    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.ticker  # noqa: F401

    fig = new_figure(2, 1)
    fig.set_layout_engine("none")
    ax = fig.add_axes((0.3, 0.3, 0.4, 0.6))
    dots = ax.scatter([1e-3, 1e-2], [1e-4, 1e-3], c=[0.5, 1.0], cmap="viridis")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("warm")
    fig.colorbar(dots, cax=fig.add_axes((0.75, 0.3, 0.05, 0.6)))
    fig.savefig(io.BytesIO(), format="png")


def plot_sweep(rows: list[dict], spaces: dict, path, best_index=None):
    """Draw the sweep's trials (``rows`` of results.csv as dicts) to ``path``."""
    from matplotlib.ticker import NullLocator

    axes_options = _axes_options(spaces)
    fig = new_figure(11, 4.6)
    fig.set_layout_engine("none")
    panels = [fig.add_axes(rect) for rect in PANELS]
    ok = [r for r in rows if r.get("status") == "ok"]
    bad = [r for r in rows if r.get("status") != "ok" and r.get("status")]
    accuracies = [float(r["val_accuracy"]) for r in ok] + [float(r["train_accuracy"])
                                                            for r in ok]
    low = min(accuracies) if accuracies else 0.0
    for ax, metric, title in ((panels[0], "val_accuracy", "validation accuracy"),
                              (panels[1], "train_accuracy", "training accuracy")):
        left, bottom, width, height = ax.get_position().bounds
        gap, bar_width = COLOUR_BAR
        if len(axes_options) == 0:
            x_name, y_name = "trial", None
        elif len(axes_options) == 1:
            x_name, y_name = axes_options[0], None
        else:
            x_name, y_name = axes_options

        def coords(subset, y_name=y_name, x_name=x_name, metric=metric):
            xs = [float(r[x_name]) for r in subset]
            ys = ([float(r[y_name]) for r in subset] if y_name else
                  [float(r[metric]) if r.get(metric) not in (None, "") else math.nan
                   for r in subset])
            return np.array(xs), np.array(ys)

        xs, ys = coords(ok)
        colours = np.array([float(r[metric]) for r in ok])
        if len(ok):
            dots = ax.scatter(xs, ys, c=colours, cmap="viridis", vmin=low, vmax=1.0, s=60,
                              edgecolors="k", linewidths=0.4)
            bar = fig.add_axes((left + width + gap, bottom, bar_width, height))
            fig.colorbar(dots, cax=bar, label=title)
        if bad and y_name:
            bx, by = coords(bad)
            ax.scatter(bx, by, marker="x", color="0.55", s=40, label="diverged or failed")
            ax.legend(loc="best", fontsize="small")
        best = [r for r in ok if best_index is not None and int(r["trial"]) == best_index]
        if best:
            bx, by = coords(best)
            ax.scatter(bx, by, s=260, facecolors="none", edgecolors="red", linewidths=1.5)
            ax.annotate(f"best: {float(best[0]['val_accuracy']):.1%} val",
                        (bx[0], by[0]), textcoords="offset points", xytext=(-10, 10),
                        ha="right", color="red", fontsize="small")
        for name, axis, scale, limits in ((x_name, ax.xaxis, ax.set_xscale, ax.set_xlim),
                                          (y_name, ax.yaxis, ax.set_yscale, ax.set_ylim)):
            space = spaces.get(name)
            if space is None:
                continue
            if _is_log(space):
                scale("log")
                axis.set_minor_locator(NullLocator())  # decades only: no crowding
            if hasattr(space, "low"):  # show the whole searched range, margins included
                pad = (space.high / space.low) ** 0.04 if space.log else None
                limits(*((space.low / pad, space.high * pad) if space.log else
                         (space.low - 0.04 * (space.high - space.low),
                          space.high + 0.04 * (space.high - space.low))))
        ax.set_xlabel(_label(x_name, spaces))
        ax.set_ylabel(_label(y_name, spaces) if y_name else title)
        ax.set_title(f"{len(ok)} trials coloured by {title}")
        ax.grid(alpha=0.3, which="major")
    return save(fig, path)


def _label(name, spaces):
    if name == "trial":
        return "trial"
    text = {"lr": "learning rate", "reg": "regularization strength (reg)",
            "weight_decay": "weight decay"}.get(name, name.replace("_", " "))
    space = spaces.get(name)
    return f"{text}, log scale" if space is not None and _is_log(space) else text
