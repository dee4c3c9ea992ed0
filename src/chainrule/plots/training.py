"""Pictures of a training run: loss and accuracy curves, per-layer diagnostics."""

import numpy as np

from ..errors import ChainruleError
from ._figure import epoch_axis, markers, new_figure, save, series


def _draw_metric(ax, epochs, history, metric, fraction=False):
    """Train (solid) and validation (dashed) values of one metric, ending values in the legend."""
    for split, style in (("train", "-"), ("val", "--")):
        values = series(history, f"{split}_{metric}")
        keep = ~np.isnan(values)
        if keep.any():
            last = values[keep][-1]
            text = f"{last:.1%}" if fraction else f"{last:.4g}"
            ax.plot(epochs[keep], values[keep], style, marker=markers(keep.sum()),
                    label=f"{split} (last {text})")
    ax.set_title(f"{metric} per epoch")
    epoch_axis(ax, epochs)
    shown = np.concatenate([series(history, f"{s}_{metric}") for s in ("train", "val")])
    shown = shown[np.isfinite(shown)]
    if not fraction and shown.size and shown.min() > 0 and shown.max() > 1e3 * shown.min():
        ax.set_yscale("log")  # a loss that exploded would flatten everything else
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if not ax.get_legend_handles_labels()[0]:  # e.g. the accuracy of a regression
        why = " (a regression has none)" if metric == "accuracy" else ""
        ax.text(0.5, 0.5, f"no {metric} recorded{why}", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        return
    ax.legend()
    if fraction:
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))


def plot_curves(history, path=None, title=None):
    """Loss and accuracy per epoch, for training and (when present) validation data.

    ``history`` is a list of per-epoch dicts with keys ``epoch``, ``train_loss`` and
    ``train_accuracy`` (a fraction in [0, 1] or a percentage), and optionally ``val_loss``,
    ``val_accuracy`` and ``lr``; a missing or ``None`` value is skipped. A learning rate that
    changes gets its own panel; a constant one is shown in the title (``title`` replaces
    its first words). A single epoch works.
    """
    if not history:
        raise ChainruleError("plot_curves needs at least one epoch of history")
    missing = {"epoch", "train_loss", "train_accuracy"} - set(history[0])
    if missing:
        raise ChainruleError(f"history entries lack the keys {sorted(missing)}")
    epochs = series(history, "epoch")
    lrs = series(history, "lr")
    known_lrs = np.unique(lrs[~np.isnan(lrs)])
    fig = new_figure(15 if len(known_lrs) > 1 else 11, 4.2)
    axes = fig.subplots(1, 3 if len(known_lrs) > 1 else 2, squeeze=False)[0]
    accuracies = np.concatenate([series(history, "train_accuracy"),
                                 series(history, "val_accuracy")])
    is_fraction = bool(np.all(accuracies[~np.isnan(accuracies)] <= 1))  # else percentages
    _draw_metric(axes[0], epochs, history, "loss")
    _draw_metric(axes[1], epochs, history, "accuracy", fraction=is_fraction)
    title = title or "Training curves"
    if len(known_lrs) > 1:
        keep = ~np.isnan(lrs)
        axes[2].plot(epochs[keep], lrs[keep], color="tab:purple", marker=markers(keep.sum()))
        if known_lrs.min() > 0 and known_lrs.max() / known_lrs.min() > 10:
            axes[2].set_yscale("log")
        axes[2].set_title("learning rate per epoch")
        epoch_axis(axes[2], epochs)
        axes[2].set_ylabel("learning rate")
        axes[2].grid(alpha=0.3)
    elif len(known_lrs) == 1:
        title += f" (learning rate {known_lrs[0]:.3g})"
    fig.suptitle(title)
    return save(fig, path)


def _layer_series(records, name, key):
    return series([r["layers"].get(name, {}) for r in records], key)


def plot_diagnostics(records, path=None):
    """Per-layer health over epochs: dead/saturated units, gradient norms, update ratios.

    ``records`` is a list of per-epoch dicts ``{"epoch": int, "layers": {name: {
    "dead_fraction": float|None, "saturated_fraction": float|None, "grad_norm": float,
    "update_ratio": float}}}``. The update-to-weight ratio panel shades the healthy band
    1e-4 to 1e-2 around the rule-of-thumb 1e-3: far below, the layer barely learns; far
    above, it is likely to diverge. Zero values cannot appear on the log-scale panels.
    """
    if not records:
        raise ChainruleError("plot_diagnostics needs at least one epoch of records")
    if not all(isinstance(r.get("layers"), dict) for r in records):
        raise ChainruleError('every diagnostics record needs a "layers" dict')
    names = list(dict.fromkeys(name for r in records for name in r["layers"]))
    epochs = series(records, "epoch")
    marker = markers(len(records))
    fig = new_figure(16, 4.5)
    ax_units, ax_grad, ax_ratio = fig.subplots(1, 3, sharex=True)  # gaps stay visible
    ax_ratio.axhspan(1e-4, 1e-2, color="tab:green", alpha=0.12, label="healthy 1e-4 to 1e-2")
    ax_ratio.axhline(1e-3, color="tab:green", linestyle="--", linewidth=1)
    measured = False
    for i, name in enumerate(names):
        colour = f"C{i % 10}"
        for key, style in (("dead_fraction", "-"), ("saturated_fraction", ":")):
            values = _layer_series(records, name, key)
            if not np.isnan(values).all():
                measured = True
                ax_units.plot(epochs, values, style, color=colour, marker=marker)
        for ax, key in ((ax_grad, "grad_norm"), (ax_ratio, "update_ratio")):
            values = _layer_series(records, name, key)
            values[values <= 0] = np.nan
            ax.plot(epochs, values, color=colour, marker=marker, label=name)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import PercentFormatter

    ax_units.set_ylim(-0.02, 1.02)
    ax_units.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    if measured:
        styles = [Line2D([], [], color="gray", linestyle="-", label="dead"),
                  Line2D([], [], color="gray", linestyle=":", label="saturated")]
        ax_units.legend(handles=styles, loc="upper right")
    else:
        ax_units.text(0.5, 0.5, "not measured", ha="center", va="center",
                      transform=ax_units.transAxes, color="gray")
    for ax, what, label in ((ax_units, "dead and saturated units", "fraction of units"),
                            (ax_grad, "gradient norm", "‖dL/dW‖"),
                            (ax_ratio, "update-to-weight ratio", "‖ΔW‖ / ‖W‖")):
        ax.set_title(f"{what} per layer")
        epoch_axis(ax, epochs)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_grad.set_yscale("log")
    ax_ratio.set_yscale("log")
    ax_grad.legend(title="layer", fontsize=8)
    ax_ratio.legend(fontsize=8)
    fig.suptitle("Training diagnostics")
    return save(fig, path)
