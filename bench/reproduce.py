"""Reproduce the documented results: ``make reproduce`` (or ``python bench/reproduce.py``).

Trains, with the library's own command-line options:

- the CS231n spiral (3 classes x 100 points) with a 2-layer net of 100 hidden units
  (>= 98% training accuracy) and with a linear classifier (<= 60%: it cannot bend);
- scikit-learn's 8x8 digits with the default 2-layer net (>= 97% test accuracy);
- Fashion-MNIST with a 2-layer net (>= 88% test accuracy in a few minutes on 2 cores),
  when its files are on this machine ($CHAINRULE_DATA/fashion-mnist, or
  /usr/share/datasets/fashion-mnist from Debian's ``dataset-fashion-mnist`` package).

and prints one table: dataset | config | accuracy | target | met? | seconds. The exit
status is 0 when every target that ran was met, 1 otherwise.

    python bench/reproduce.py [--out DIR] [--skip fashion-mnist] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from chainrule.errors import DatasetNotFoundError
from chainrule.experiment import RunConfig
from chainrule.experiment import train as run_experiment


@dataclass
class Target:
    name: str  # the run's folder name
    config: RunConfig
    options: str  # the same run as `chainrule train` options, for the table
    split: str  # "train" or "test": whose accuracy is judged
    bound: float
    at_least: bool = True  # False: the accuracy must stay at or below the bound

    def met(self, accuracy: float) -> bool:
        return accuracy >= self.bound if self.at_least else accuracy <= self.bound

    def describe(self) -> str:
        return f"{self.split} {'>=' if self.at_least else '<='} {self.bound:.0%}"


TARGETS = [
    Target("spiral-hidden-100", RunConfig(dataset="spiral", hidden=[100]),
           "--hidden 100", "train", 0.98),
    Target("spiral-linear", RunConfig(dataset="spiral", hidden=[]),
           "--hidden none", "train", 0.60, at_least=False),
    Target("digits", RunConfig(dataset="digits"), "(defaults)", "test", 0.97),
    Target("fashion-mnist",
           RunConfig(dataset="fashion-mnist", hidden=[512], dropout=0.2, optimizer="adam",
                     lr=2e-3, batch_size=256, epochs=15, lr_schedule="cosine"),
           "--hidden 512 --dropout 0.2 --lr 2e-3 --batch-size 256 --epochs 15 "
           "--lr-schedule cosine", "test", 0.88),
]


def data_missing(config: RunConfig) -> str | None:
    """Why the data set cannot be loaded here (its files are absent), or None."""
    if config.dataset != "fashion-mnist":
        return None
    from chainrule.data import fashion_mnist

    try:
        fashion_mnist(config.data_dir)
    except DatasetNotFoundError:
        return ("files not found: apt-get install dataset-fashion-mnist, "
                "or put them in $CHAINRULE_DATA/fashion-mnist")
    return None


def run_one(target: Target, out_root: Path) -> dict:
    row = {"dataset": target.config.dataset, "config": target.options,
           "target": target.describe()}
    reason = data_missing(target.config)
    if reason is not None:
        return {**row, "accuracy": None, "met": None, "seconds": None, "note": reason}
    config = RunConfig(**{**target.config.to_dict(), "out": str(out_root / target.name)})
    started = time.perf_counter()
    summary = run_experiment(config, progress=False)
    seconds = time.perf_counter() - started
    accuracy = summary[f"{target.split}_accuracy"]
    return {**row, "accuracy": accuracy, "met": target.met(accuracy), "seconds": seconds,
            "epochs": summary["epochs"], "note": ""}


def format_table(rows: list[dict]) -> str:
    header = ["dataset", "config", "accuracy", "target", "met?", "seconds"]
    lines = []
    for row in rows:
        if row["accuracy"] is None:
            cells = [row["dataset"], row["config"], "-", row["target"], "skipped", "-"]
        else:
            cells = [row["dataset"], row["config"], f"{row['accuracy']:.2%}", row["target"],
                     "yes" if row["met"] else "NO", f"{row['seconds']:.1f}"]
        lines.append(cells)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines)]

    def render(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    text = [render(header), rule, *(render(cells) for cells in lines)]
    notes = [f"{row['dataset']}: {row['note']}" for row in rows if row["note"]]
    return "\n".join(text + notes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        help="keep each run's folder (summary, history, pictures) here")
    parser.add_argument("--skip", nargs="+", default=[], metavar="DATASET",
                        help="data sets to leave out, e.g. fashion-mnist")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chainrule-reproduce-") as scratch:
        out_root = args.out or Path(scratch)
        out_root.mkdir(parents=True, exist_ok=True)
        rows = []
        for target in TARGETS:
            if target.config.dataset in args.skip:
                continue
            print(f"training {target.config.dataset} {target.options} ...", flush=True)
            rows.append(run_one(target, out_root))
    print()
    print(format_table(rows))
    if args.out:
        print(f"\nruns (summary.json, history.csv, pictures) in {args.out}/")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(row["met"] is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
