"""Sweep benchmarks: populations against one-by-one training, and Dask workers.

    python bench/sweep.py                  # both, a few minutes on 2 cores
    python bench/sweep.py --only population
    python bench/sweep.py --only dask
    python bench/sweep.py --only startup

1. population: 32 spiral trials (MLP 2-100-3, Adam, 200 epochs, batch 64; lr and reg drawn
   log-uniformly) on one core, BLAS pinned to 1 thread, compared like for like:
   - in memory: ``PopulationTrainer`` (all 32 as one network) against ``Trainer`` (compiled
     steps, as ``chainrule train`` runs them) trial after trial, neither writing files;
   - as a sweep runs them: ``run_population`` (one task: each member's run folder written)
     against ``run_trial`` trial after trial (a run folder each, checkpoints every 10 s
     and after the last epoch, the sweep's default).
   Before timing, each member's validation accuracy is checked against its run alone.
   Target: the population >= 5x faster than one by one, in both comparisons.
2. dask: ``chainrule sweep`` run as a user runs it (a new process each time, wall time)
   on an embedded cluster of 1 worker process and of 2: the search of the README's digits
   sweep (40 trials; lr 1e-4:1e-1:log, reg 1e-6:1e-2:log, hidden 50,100,200, relu or tanh)
   trained for 50 epochs, so that a trial lasts about half a second, as trials worth a
   cluster do. Reported with everything (process and cluster start, the best trial's test
   evaluation, sweep.png, cluster stop) and with the cluster up only (trials + results,
   from sweep.json's phases). Target: 2 workers >= 1.7x faster than 1. Needs 2 idle cores.

3. startup: what every sweep pays before its first trial, in new processes (median of 9):
   ``python -c "import chainrule"``, ``chainrule sweep --help`` (the command line's start).

Candidates alternate (A, B, A, B, ...) for ``--rounds`` rounds; a ratio is the median of
the per-round ratios. Timings move with the machine's load (shown); the ratios move less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import fix_threads, header  # noqa: E402

from chainrule.experiment import build_model, build_optimizer  # noqa: E402
from chainrule.sweep import PopulationTrainer, SearchSpace  # noqa: E402
from chainrule.sweep.population import run_population  # noqa: E402
from chainrule.sweep.trial import CHECKPOINT_SECONDS, load_trial_data, run_trial  # noqa: E402
from chainrule.train import Trainer  # noqa: E402

TRIALS, EPOCHS, CHECK_EPOCHS = 32, 200, 20
SPACE = {"dataset": "spiral", "hidden": "100", "optimizer": "adam", "epochs": EPOCHS,
         "batch_size": 64, "lr": "1e-3:1e-1:log", "reg": "1e-5:1e-2:log"}


def population_configs(trials=TRIALS, epochs=EPOCHS):
    space = SearchSpace.from_options({**SPACE, "epochs": epochs})
    return [space.config(values).resolved() for values in space.random(trials, seed=0)]


def one_by_one(configs):
    """Each trial trained alone by Trainer (compiled steps), nothing written: val accuracies."""
    accuracies = []
    for config in configs:
        data, _ = load_trial_data(config)
        model = build_model(config, data.num_features, data.num_classes)
        trainer = Trainer(model, build_optimizer(config, model.parameters()),
                          loss=config.loss, reg=config.reg, epochs=config.epochs,
                          batch_size=config.batch_size, seed=config.seed, progress=False)
        accuracies.append(trainer.fit(data)["val_accuracy"])
    return accuracies


def together(configs):
    """All trials as one population in memory: val accuracies."""
    return [r["summary"]["val_accuracy"] for r in PopulationTrainer(configs).fit()]


def _tasks(configs, folder):
    return [{"index": i, "config": c.to_dict(), "dir": str(Path(folder) / f"{i:04d}"),
             "checkpoint_every": CHECKPOINT_SECONDS} for i, c in enumerate(configs)]


def as_sweep_trials(configs, folder):
    """Each trial as the sweep runs it alone: its run folder, checkpoints, trial.json."""
    return [run_trial(task)["val_accuracy"] for task in _tasks(configs, folder)]


def as_sweep_population(configs, folder):
    """The trials as the sweep runs them with --population: one task, every member's
    run folder written."""
    return [o["val_accuracy"] for o in run_population(_tasks(configs, folder))]


def timed(fn, *args):
    """(seconds, result) of ``fn(*args)``; a function of (configs, folder) gets a new
    folder, made and removed outside the timing."""
    with tempfile.TemporaryDirectory() as folder:
        if fn in (as_sweep_trials, as_sweep_population):
            args = (*args, folder)
        started = time.perf_counter()
        result = fn(*args)
        return time.perf_counter() - started, result


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_population(rounds):
    configs = population_configs()
    print(f"population: {len(configs)} spiral trials, MLP 2-100-3, Adam, {EPOCHS} epochs, "
          "batch 64, one core")
    # Correctness first, on four members trained for CHECK_EPOCHS: as in the tests, a
    # member and its run alone agree to float32 rounding, which lets a validation point
    # on a tie flip. (Over all 200 epochs the two roundings drift further apart, as any
    # two float32 computations of a long training run do: printed after the timings.)
    short = population_configs(4, epochs=CHECK_EPOCHS)
    worst = max(abs(a - b) for a, b in zip(one_by_one(short), together(short)))
    print(f"check: val accuracy of 4 members alone vs together after {CHECK_EPOCHS} epochs, "
          f"largest difference {worst:.4f}")
    if worst > 2 / 300:  # two of the 300 validation points
        raise SystemExit("population and one-by-one results disagree; timings not comparable")
    candidates = {"in memory": (together, one_by_one),
                  "as sweep tasks": (as_sweep_population, as_sweep_trials)}
    times = {name: ([], []) for name in candidates}
    drift = 0.0
    for _ in range(rounds):
        for name, (population, single) in candidates.items():
            (seconds_p, joint), (seconds_s, alone) = (timed(population, configs),
                                                      timed(single, configs))
            times[name][0].append(seconds_p)
            times[name][1].append(seconds_s)
            drift = max(drift, *(abs(a - b) for a, b in zip(alone, joint)))
    print(f"{'':<16} {'population s':>13} {'one by one s':>13} {'speed-up':>9}   per round")
    missed = []
    for name, (pop, single) in times.items():
        ratios = [s / p for s, p in zip(single, pop)]
        ratio = statistics.median(ratios)
        missed += [name] if ratio < 5 else []
        print(f"{name:<16} {statistics.median(pop):>13.2f} {statistics.median(single):>13.2f} "
              f"{ratio:>8.1f}x   " + ", ".join(f"{r:.1f}x" for r in ratios))
    print(f"after {EPOCHS} epochs, val accuracy alone vs together differs by at most "
          f"{drift:.4f} over the {len(configs)} trials")
    print(f"({load()})")
    print("target: population >= 5x faster than one by one: "
          + ("met in both comparisons" if not missed else "MISSED: " + ", ".join(missed))
          + "\n")


def dask_options(epochs):
    return ["--dataset", "digits", "--trials", "40", "--lr", "1e-4:1e-1:log",
            "--reg", "1e-6:1e-2:log", "--hidden", "50,100,200", "--activation", "relu,tanh",
            "--epochs", str(epochs)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sweep_command(workers, epochs):
    """``chainrule sweep`` in a new process: (wall seconds, sweep.json's summary, CPU
    seconds of the command's own process). The workers are children of the fork server,
    which the command leaves to end on its own, so their CPU is not counted: what is, is
    the process that plans, hosts Dask's scheduler and nannies, and writes the results."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "chainrule", "sweep", *dask_options(epochs),
                   "--workers", str(workers), "--quiet", "--out", folder]
        cpu, started = _children_cpu(), time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
        summary = json.loads((Path(folder) / "sweep.json").read_text())
    assert summary["counts"] == {"ok": 40}, summary["counts"]
    return seconds, summary, cpu


def bench_dask(rounds, epochs):
    print("dask: chainrule sweep " + " ".join(dask_options(epochs)) + " --workers 1|2")
    print(f"      (40 digits trials, MLP 64-H-10, {epochs} epochs each; a new process per "
          "sweep)")
    runs = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            runs[workers].append(run_sweep_command(workers, epochs))
    rows = {"everything": lambda r: r[0],
            "cluster up": lambda r: r[1]["phases"]["trials"] + r[1]["phases"]["results"]}
    print(f"{'':<12} {'1 worker s':>11} {'2 workers s':>12} {'speed-up':>9}   per round")
    ratio_all = None
    for name, pick in rows.items():
        one, two = [pick(r) for r in runs[1]], [pick(r) for r in runs[2]]
        ratios = [a / b for a, b in zip(one, two)]
        ratio = statistics.median(ratios)
        ratio_all = ratio if ratio_all is None else ratio_all
        print(f"{name:<12} {statistics.median(one):>11.2f} {statistics.median(two):>12.2f} "
              f"{ratio:>8.2f}x   " + ", ".join(f"{r:.2f}x" for r in ratios))
    for workers in (1, 2):
        phases = runs[workers][-1][1]["phases"]
        print(f"phases, {workers} worker{'s' if workers > 1 else ''} (last round): "
              + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    print("CPU of the command's own process (the driver: planning, Dask's scheduler and "
          "nannies, results), median: " + ", ".join(
              f"{workers} worker{'s' if workers > 1 else ''} "
              f"{statistics.median(r[2] for r in runs[workers]):.2f} s" for workers in (1, 2)))
    # Amdahl: what does not shrink with more workers bounds the speed-up
    wall, summary, _ = runs[1][-1]
    trials = summary["phases"]["trials"]
    serial = wall - trials
    print(f"with 1 worker, {serial:.2f} s of {wall:.2f} s is not the trials (process and "
          f"cluster start, results, cluster stop): 2 workers can at best reach "
          f"{wall / (serial + trials / 2):.2f}x")
    print(f"({load()})")
    print(f"target: 2 workers >= 1.7x faster than 1, everything included: "
          f"{'met' if ratio_all >= 1.7 else 'MISSED'} ({ratio_all:.2f}x)\n")


def bench_startup(repeats=9):
    commands = {"import chainrule": [sys.executable, "-c", "import chainrule"],
                "chainrule sweep --help": [sys.executable, "-m", "chainrule", "sweep",
                                           "--help"],
                "python alone": [sys.executable, "-c", "pass"]}
    times = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - started)
    print("startup: new processes, wall seconds (median of "
          f"{repeats}; the interpreter's own start included)")
    for name, seconds in times.items():
        print(f"  {name:<24} {statistics.median(seconds):.3f} s")
    print(f"({load()})\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("population", "dask", "startup"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dask-epochs", type=int, default=50,
                        help="epochs of each trial of the Dask sweep (the README's command: 20)")
    args = parser.parse_args(argv)
    fix_threads()
    print(header() + "\n")
    if args.only in (None, "population"):
        bench_population(args.rounds)
    if args.only in (None, "startup"):
        bench_startup()
    if args.only in (None, "dask"):
        bench_dask(args.rounds, args.dask_epochs)


if __name__ == "__main__":
    main()
