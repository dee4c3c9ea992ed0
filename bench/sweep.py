"""Sweep benchmarks: populations against one-by-one training, and Dask workers.

    python bench/sweep.py                  # both, a few minutes on 2 cores
    python bench/sweep.py --only population
    python bench/sweep.py --only dask

1. population: 32 spiral trials (MLP 2-100-3, Adam, 200 epochs, batch 64; lr and reg drawn
   log-uniformly) on one core, BLAS pinned to 1 thread. One by one, as ``Trainer`` trains
   them without writing anything (and, for reference, as sweep trials, which write a
   checkpoint every epoch), against ``PopulationTrainer`` with all 32 as one network.
   Before timing, each member's validation accuracy is checked against its run alone.
   Target: population >= 5x faster than one by one.
2. dask: a 16-trial digits sweep (64-100-10, 20 epochs) on an embedded cluster of 1 worker
   process and of 2, wall time of the whole command (cluster start and stop included).
   Target: 2 workers >= 1.7x faster than 1. Needs 2 free cores to mean anything.

Candidates alternate (A, B, A, B, ...) for ``--rounds`` rounds; a ratio is the median of
the per-round ratios. Timings move with the machine's load; the ratios move less.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import fix_threads, header  # noqa: E402

from chainrule.experiment import build_model, build_optimizer  # noqa: E402
from chainrule.sweep import PopulationTrainer, SearchSpace, sweep  # noqa: E402
from chainrule.sweep.trial import load_trial_data, train_in_folder  # noqa: E402
from chainrule.train import Trainer  # noqa: E402

TRIALS, EPOCHS = 32, 200
SPACE = {"dataset": "spiral", "hidden": "100", "optimizer": "adam", "epochs": EPOCHS,
         "batch_size": 64, "lr": "1e-3:1e-1:log", "reg": "1e-5:1e-2:log"}


def population_configs(trials=TRIALS, epochs=EPOCHS):
    space = SearchSpace.from_options({**SPACE, "epochs": epochs})
    return [space.config(values).resolved() for values in space.random(trials, seed=0)]


def one_by_one(configs):
    """Each trial trained alone by Trainer, nothing written: val accuracies."""
    accuracies = []
    for config in configs:
        data, _ = load_trial_data(config)
        model = build_model(config, data.num_features, data.num_classes)
        trainer = Trainer(model, build_optimizer(config, model.parameters()),
                          loss=config.loss, reg=config.reg, epochs=config.epochs,
                          batch_size=config.batch_size, seed=config.seed, progress=False)
        accuracies.append(trainer.fit(data)["val_accuracy"])
    return accuracies


def as_sweep_trials(configs):
    """Each trial as the sweep runs it alone: a run folder, a checkpoint every epoch."""
    with tempfile.TemporaryDirectory() as folder:
        return [train_in_folder(c, Path(folder) / str(i))["val_accuracy"]
                for i, c in enumerate(configs)]


def together(configs):
    return [r["summary"]["val_accuracy"] for r in PopulationTrainer(configs).fit()]


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def bench_population(rounds):
    configs = population_configs()
    print(f"population: {len(configs)} spiral trials, MLP 2-100-3, Adam, {EPOCHS} epochs, "
          "batch 64, one core")
    alone = one_by_one(configs[:4])  # correctness first, on a few members
    joint = together(configs[:4])
    worst = max(abs(a - b) for a, b in zip(alone, joint))
    print(f"check: val accuracy of 4 members alone vs together, largest difference {worst:.4f}")
    if worst > 0.01:
        raise SystemExit("population and one-by-one results disagree; timings not comparable")
    times = {"one by one (Trainer)": [], "one by one (sweep trials)": [], "population": []}
    for _ in range(rounds):
        times["population"].append(timed(together, configs)[0])
        times["one by one (Trainer)"].append(timed(one_by_one, configs)[0])
        times["one by one (sweep trials)"].append(timed(as_sweep_trials, configs)[0])
    pop = times["population"]
    print(f"{'candidate':<28} {'seconds (median)':>18} {'population speed-up':>20}")
    for name, values in times.items():
        ratios = [v / p for v, p in zip(values, pop)]
        print(f"{name:<28} {statistics.median(values):>18.2f} "
              f"{statistics.median(ratios):>19.1f}x")
    rounds_ratios = [a / p for a, p in zip(times["one by one (Trainer)"], pop)]
    ratio = statistics.median(rounds_ratios)
    print("per round: " + ", ".join(f"{r:.1f}x" for r in rounds_ratios))
    print(f"target: population >= 5x faster than one by one (Trainer): "
          f"{'met' if ratio >= 5 else 'MISSED'} ({ratio:.1f}x)\n")


DASK_SPACE = {"dataset": "digits", "hidden": "100", "epochs": 20, "lr": "1e-4:1e-2:log",
              "reg": "1e-6:1e-2:log"}


def bench_dask(rounds):
    options = DASK_SPACE
    print("dask: a 16-trial digits sweep (MLP 64-100-10, 20 epochs), embedded cluster of 1 "
          "vs 2 worker processes, wall time including cluster start and stop")
    times = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as folder:
                seconds, summary = timed(lambda w=workers, f=folder: sweep(
                    options, trials=16, out=f, workers=w, progress=False,
                    log=lambda line: None))
                assert summary["counts"] == {"ok": 16}, summary["counts"]
                times[workers].append(seconds)
    rounds_ratios = [a / b for a, b in zip(times[1], times[2])]
    ratio = statistics.median(rounds_ratios)
    print("per round: " + ", ".join(f"{r:.2f}x" for r in rounds_ratios))
    print(f"1 worker {statistics.median(times[1]):.2f} s, 2 workers "
          f"{statistics.median(times[2]):.2f} s: speed-up {ratio:.2f}x")
    print(f"target: >= 1.7x: {'met' if ratio >= 1.7 else 'MISSED'}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("population", "dask"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    fix_threads()
    print(header() + "\n")
    if args.only in (None, "population"):
        bench_population(args.rounds)
    if args.only in (None, "dask"):
        bench_dask(args.rounds)


if __name__ == "__main__":
    main()
