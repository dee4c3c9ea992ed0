"""Pictures of a model: its decision regions, its first-layer templates, a Jacobian."""

import math

import numpy as np

from ..errors import ChainruleError, ShapeError
from ._figure import as_array, class_colours, new_figure, save

_PREDICT_CHUNK = 65536


def _predict_grid(predict, grid):
    """Labels (M,) for grid points (M, 2), asking ``predict`` at most a chunk at a time."""
    labels = []
    for start in range(0, len(grid), _PREDICT_CHUNK):
        chunk = grid[start:start + _PREDICT_CHUNK]
        out = as_array(predict(chunk))
        if out.ndim == 2 and out.shape[0] == len(chunk):
            out = out.argmax(axis=1)  # scores or probabilities per class
        if out.shape != (len(chunk),):
            raise ShapeError(
                f"predict must return labels of shape ({len(chunk)},) for input "
                f"({len(chunk)}, 2), got {out.shape}"
            )
        labels.append(out.astype(np.int64))
    return np.concatenate(labels)


def plot_boundary(predict, X, y, path=None, title=None, resolution=300):
    """The decision regions of a 2-D classifier, with the data points on top.

    ``predict`` maps a float32 array (M, 2) to integer labels (M,) (class scores (M, C) are
    also accepted and argmax-ed); it is called on a ``resolution`` x ``resolution`` grid that
    covers ``X`` (N, 2) with a 10% margin, in chunks. Regions are coloured lightly and points
    ``y`` (N,) darkly per class, on equal axes, so a linear model's straight boundaries and an
    MLP's bent ones can be compared at a glance.
    """
    X, y = as_array(X, np.float64), as_array(y)
    if X.ndim != 2 or X.shape[1] != 2 or y.shape != (len(X),) or len(X) == 0:
        raise ShapeError(f"plot_boundary needs X (N, 2) and y (N,), got {X.shape} and {y.shape}")
    resolution = int(resolution)
    if resolution < 2:
        raise ChainruleError(f"resolution must be at least 2, got {resolution}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    margin = np.where(hi > lo, 0.1 * (hi - lo), 1.0)
    lo, hi = lo - margin, hi + margin
    xs = np.linspace(lo[0], hi[0], resolution, dtype=np.float32)
    ys = np.linspace(lo[1], hi[1], resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    regions = _predict_grid(predict, grid).reshape(resolution, resolution)

    classes = np.union1d(np.unique(y.astype(np.int64)), np.unique(regions))
    dark, light = class_colours(len(classes))
    fig = new_figure(6.5, 6)
    ax = fig.add_subplot()
    ax.imshow(light[np.searchsorted(classes, regions)], origin="lower", interpolation="nearest",
              extent=(lo[0], hi[0], lo[1], hi[1]), aspect="equal")
    size = 30 if len(X) <= 500 else 12 if len(X) <= 3000 else 5
    for i, c in enumerate(classes):
        mine = y == c
        if mine.any():
            ax.scatter(X[mine, 0], X[mine, 1], s=size, color=dark[i], edgecolors="black",
                       linewidths=0.5, label=f"class {c}")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title if title is not None else "Decision regions")
    ax.legend(loc="best", framealpha=0.8)
    return save(fig, path)


def _template_images(weights, image_shape):
    """Reshape rows (n, D) into displayable images (n, h, w) or (n, h, w, 3) in [0, 1]."""
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) == 3 and image_shape[0] == 1:
        image_shape = image_shape[1:]
    if len(image_shape) not in (2, 3) or (len(image_shape) == 3 and image_shape[0] != 3):
        raise ShapeError(f"image_shape must be (h, w) or (3, h, w), got {image_shape}")
    if weights.shape[1] != math.prod(image_shape):
        raise ShapeError(
            f"weights have {weights.shape[1]} inputs per unit but image_shape {image_shape} "
            f"holds {math.prod(image_shape)} pixels"
        )
    images = weights.reshape(len(weights), *image_shape)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)  # channel-major (3, h, w) -> (h, w, 3)
    # Each template gets its own contrast: only its pattern matters, not its scale.
    axes = tuple(range(1, images.ndim))
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    return np.where(span > 0, (images - low) / np.where(span > 0, span, 1), 0.5)


def plot_templates(weights, image_shape, path=None, max_templates=100, titles=None,
                   title=None):
    """First-layer weights (H, D) drawn as images in a grid, one per hidden unit or class.

    Row ``i`` of ``weights`` is the "template" unit ``i`` matches its input against; it is
    reshaped to ``image_shape``, (h, w) for greyscale such as (8, 8) or (28, 28), or (3, h, w)
    channel-major for colour such as CIFAR's (3, 32, 32), and rescaled to [0, 1] on its own.
    At most ``max_templates`` are drawn; ``titles`` (one string per row, e.g. class names)
    labels each image; ``title`` replaces the figure's title.
    """
    weights = as_array(weights, np.float64)
    if weights.ndim != 2 or len(weights) == 0:
        raise ShapeError(f"weights must be a non-empty matrix (H, D), got shape {weights.shape}")
    n = min(len(weights), int(max_templates))
    if titles is not None and len(titles) < n:
        raise ChainruleError(f"got {len(titles)} titles for {n} templates")
    images = _template_images(weights[:n], image_shape)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell = max(0.8, min(2.0, 10 / cols))
    fig = new_figure(cols * cell, rows * cell + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    units = f"{n} of {len(weights)}" if n < len(weights) else f"{n}"
    fig.suptitle(title or f"First-layer weights as images ({units} templates)")
    return save(fig, path)


def plot_jacobian(J, path=None, title=None):
    """A Jacobian matrix (M, N) as an image: entry (i, j) is d output_i / d input_j.

    Colours are signed and centred at zero (red positive, blue negative, white zero) with a
    colorbar, so the diagonal Jacobian of an elementwise operation such as ReLU shows as a
    single line of colour on white. A vector (N,) is drawn as one row; small matrices also
    get their values written in the cells.
    """
    J = as_array(J, np.float64)
    if J.ndim == 1:
        J = J[None, :]
    if J.ndim != 2 or J.size == 0:
        raise ShapeError(f"plot_jacobian needs a matrix (M, N), got shape {J.shape}")
    rows, cols = J.shape
    bound = float(np.nanmax(np.abs(J))) or 1.0
    width = min(10, max(4, 0.5 * cols + 2))
    height = min(9, max(3, 0.5 * rows + 1.5))
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    image = ax.imshow(J, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest",
                      aspect="auto" if max(rows, cols) > 4 * min(rows, cols) else "equal")
    fig.colorbar(image, ax=ax, label="∂ output / ∂ input")
    if rows * cols <= 100:
        for (i, j), value in np.ndenumerate(J):
            ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=8,
                    color="white" if abs(value) > 0.6 * bound else "black")
    if max(rows, cols) <= 20:
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
    ax.set_xlabel("input index j")
    ax.set_ylabel("output index i")
    ax.set_title(title if title is not None else f"Jacobian ({rows} × {cols})")
    return save(fig, path)
