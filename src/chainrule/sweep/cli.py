"""``chainrule sweep``: every option of ``chainrule train`` as a value or a space."""

from __future__ import annotations

import argparse

from ..data import DATASETS
from ..errors import ChainruleError
from .space import KINDS
from .trial import CHECKPOINT_SECONDS

SPACE_HELP = "a value, a list a,b,c, a range a:b or a log range a:b:log"


def add_parser(commands):
    """Register ``sweep`` on the command line's subparsers."""
    p = commands.add_parser(
        "sweep", help="search hyperparameters: many training runs on Dask",
        description="Search hyperparameters. Each training option takes a value, a list "
                    "(a,b,c), a range (a:b) or a log range (a:b:log).")
    for option in KINDS:
        flag = "--" + option.replace("_", "-")
        if option == "hidden":
            p.add_argument(flag, nargs="+", help="layer sizes: 100, a list 50,100,200, "
                           "100x50 for two layers, none for a linear classifier")
        elif option == "dataset":
            p.add_argument(flag, help=f"one of {', '.join(DATASETS)} (or a list)")
        else:
            p.add_argument(flag, help=SPACE_HELP)
    p.add_argument("--trials", type=int, help="random trials (default 20); with --search "
                   "grid, at most this many grid points (default all)")
    p.add_argument("--search", default="random", choices=("random", "grid"))
    p.add_argument("--grid-points", type=int, default=3,
                   help="values per range in a grid search (default 3)")
    p.add_argument("--search-seed", type=int, default=0,
                   help="seed of the random search: the same seed draws the same trials")
    p.add_argument("--out", default="runs/sweep",
                   help="the sweep's folder (default runs/sweep); rerun to continue")
    p.add_argument("--workers", type=int,
                   help="worker processes of the embedded Dask cluster (default: cores)")
    p.add_argument("--scheduler", help="run on an existing Dask cluster: tcp://HOST:PORT")
    p.add_argument("--population", type=int, default=1,
                   help="train up to K trials of one architecture at once as one batched "
                        "network (default 1: one at a time)")
    p.add_argument("--checkpoint-every", type=_seconds, default=CHECKPOINT_SECONDS,
                   metavar="SECONDS", help="seconds between a trial's checkpoints (default "
                   f"{CHECKPOINT_SECONDS:g}; 0: after every epoch); a killed worker's trial "
                   "resumes from its last one")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar: one line per finished trial")


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value or None  # 0: after every epoch


def options_from_args(args) -> dict:
    options = {}
    for option in KINDS:
        value = getattr(args, option)
        if value is None:
            continue
        if option == "hidden":
            if len(value) > 1:  # `--hidden 100 50` as in chainrule train: two layers
                if any("," in v or ":" in v for v in value):
                    raise ChainruleError("--hidden: give one list such as 50,100,200 (write "
                                         "two layers as 100x50)")
                value = ["x".join(value)]
            value = value[0]
        options[option] = value
    return options


def run(args):
    from .runner import sweep

    summary = sweep(options_from_args(args), trials=args.trials, search=args.search,
                    grid_points=args.grid_points, search_seed=args.search_seed, out=args.out,
                    workers=args.workers, scheduler=args.scheduler,
                    population=args.population, progress=False if args.quiet else None,
                    checkpoint_every=args.checkpoint_every)
    print(format_summary(summary, args.out))


def format_summary(summary, out) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    lines = [f"{summary['finished']} of {summary['trials']} trials ({counts}) in "
             f"{summary['seconds']:.1f} s " + (f"on {summary['where']}" if summary["where"]
                                               else "(all had finished: nothing left to run)")]
    best = summary.get("best")
    if best is not None:
        values = ", ".join(f"{k}={_short(v)}" for k, v in best["values"].items())
        line = (f"best: trial {best['trial']} ({values}): val_accuracy "
                f"{best['val_accuracy']:.4f}, train_accuracy {best['train_accuracy']:.4f}")
        if "test_accuracy" in best:
            line += f"; test_accuracy {best['test_accuracy']:.4f} (its one look at the test set)"
        lines.append(line)
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    written = ["results.csv", "sweep.json"] + (["sweep.png"] if summary.get("picture") else [])
    written += ["best/"] if best is not None else []
    lines.append(f"results in {out}/: {', '.join(written)}")
    return "\n".join(lines)


def _short(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "x".join(str(v) for v in value) or "none"
    return str(value)
