"""Benchmarks 3 and 4's compiled ratios in CPU time, for a machine others are loading.

    python bench/cpu_ratios.py              # compiled step / hand NumPy, and the epoch
    python bench/cpu_ratios.py medium 300   # one size, more rounds

Wall-clock ratios of ``make bench`` swing by several percent when other processes share
the cores; this process's CPU time (``time.process_time``) does not count the time it
waits for a core, so the ratio of two interleaved candidates stays within about a
percent. The candidates and checks are those of ``train_step.py`` (chainrule compiled
and hand-written NumPy, same weights and batch) and ``epoch.py`` (the ``Trainer``'s
inner loop against the NumPy loop, whole epochs taking turns).
"""

from __future__ import annotations

import sys
import time

import epoch
from _numpy_ref import NumpyMLP
from _timing import fix_threads, header, interleaved
from train_step import SIZES, build

import chainrule as cr

ROUNDS = {"tiny": 2000, "medium": 300, "large": 20}


def step_ratio(label, rounds=None):
    batch, sizes = SIZES[label][:2]
    steps, _, _ = build(batch, sizes)
    chosen = {name: steps[name] for name in ("compiled", "numpy")}
    timings = interleaved(chosen, repeats=rounds or ROUNDS[label], warmup=3,
                          clock=time.process_time)
    return timings


def epoch_ratio(rounds=7):
    X, y = epoch.make_data()
    model = cr.nn.MLP(epoch.D, [epoch.H], epoch.C, seed=epoch.SEED)
    chosen = {"Trainer": epoch.trainer_epoch(X, y, epoch._copy_model(model)),
              "numpy": epoch.numpy_epoch(X, y, NumpyMLP.from_chainrule(model))}
    return interleaved(chosen, repeats=rounds, warmup=1, clock=time.process_time)


def main(labels, rounds=None):
    print(header(), "\n")
    for label in labels:
        if label == "epoch":
            timings, a = epoch_ratio(rounds or 7), "Trainer"
        else:
            timings, a = step_ratio(label, rounds), "compiled"
        median, q25, q75 = timings.ratio(a, "numpy")
        print(f"{label:7s} {a} {timings.median(a) * 1e3:9.3f} ms, numpy "
              f"{timings.median('numpy') * 1e3:9.3f} ms (CPU time): {median:.3f}x "
              f"({q25:.3f}-{q75:.3f})")


if __name__ == "__main__":
    fix_threads()
    args = sys.argv[1:]
    chosen = [a for a in args if not a.isdigit()] or ["tiny", "medium", "large", "epoch"]
    counts = [int(a) for a in args if a.isdigit()]
    main(chosen, counts[0] if counts else None)
