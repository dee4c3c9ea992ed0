"""sweep.png: drawn on a fixed layout, with nothing cut off, and the same after the warm-up
that a sweep runs while its cluster starts."""

import io
import random

import pytest

pytest.importorskip("matplotlib", reason='sweep.png needs matplotlib: pip install '
                    '"chainrule[plot]"')

from chainrule.sweep.plot import plot_sweep, prepare_drawing  # noqa: E402
from chainrule.sweep.space import SearchSpace  # noqa: E402


def trials(options, count=12, seed=0):
    """(rows as results.csv holds them, the spaces) for ``count`` made-up trials, every
    fourth failed."""
    space = SearchSpace.from_options(options)
    rng = random.Random(seed)
    rows = []
    for i, values in enumerate(space.random(count, seed)):
        ok = i % 4 != 3
        rows.append({"trial": i, **values, "status": "ok" if ok else "failed",
                     "val_accuracy": rng.uniform(0.5, 0.99) if ok else "",
                     "train_accuracy": rng.uniform(0.5, 1.0) if ok else ""})
    return rows, space.spaces


SEARCHES = {"lr and reg": {"lr": "1e-4:1e-1:log", "reg": "1e-6:1e-2:log", "hidden": "50,100"},
            "one number": {"weight_decay": "1e-6:1e-2:log", "hidden": "50,100"},
            "lr and epochs": {"lr": "1e-3:1e-1:log", "epochs": "10:200"}}


@pytest.mark.parametrize("search", SEARCHES)
def test_nothing_is_cut_off_and_the_panels_do_not_overlap(search):
    rows, spaces = trials({"dataset": "spiral", **SEARCHES[search]})
    fig = plot_sweep(rows, spaces, None, best_index=0)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # everything drawn (tick labels, titles, axis labels) lies inside the figure
    drawn, page = fig.get_tightbbox(renderer), fig.bbox_inches
    assert page.x0 <= drawn.x0 and drawn.x1 <= page.x1
    assert page.y0 <= drawn.y0 and drawn.y1 <= page.y1
    # left to right: panel, its colour bar, panel, its colour bar; each one's labels end
    # before the next one's begin
    axes = sorted(fig.axes, key=lambda ax: ax.get_position().x0)
    assert len(axes) == 4
    boxes = [ax.get_tightbbox(renderer) for ax in axes]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))


def test_the_warm_up_leaves_the_picture_unchanged():
    rows, spaces = trials({"dataset": "spiral", **SEARCHES["lr and reg"]})

    def png():
        buffer = io.BytesIO()
        plot_sweep(rows, spaces, None, best_index=2).savefig(buffer, format="png")
        return buffer.getvalue()

    before = png()
    prepare_drawing()
    assert png() == before
