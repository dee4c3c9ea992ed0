"""Benchmark 6: micrograd's demo step, on arrays instead of scalars.

micrograd's demo notebook (``demo.ipynb`` in karpathy/micrograd) trains an MLP 2-16-16-1
(ReLU, linear output) on 100 points of the two-moons data with an SVM max-margin loss,
mean(relu(1 - y * score)), plus L2 regularisation 1e-4 * sum(p * p), by SGD with a
learning rate falling from 1.0 by 0.9 over 100 steps. Each step of its loop calls its
``loss()`` (which also computes the accuracy), ``zero_grad``, ``backward`` and the update.
Here that step runs in chainrule, written as a user porting the notebook writes it
(``nn.MLP``, operators, ``optim.SGD``), and in NumPy by hand, and is compared with
micrograd's.

micrograd's reference is its demo as its author runs it (``micrograd_notebook.py``): the
notebook's loop, with its NumPy float64 inputs and int labels, so that micrograd computes
on NumPy scalars as it does there. micrograd's step makes about 100,000 ``Value``s tied
in reference cycles, so its time includes the garbage collector's full collections, which
fall on some steps and not others: single steps range from 0.7 to 1.6 s. The figure used
is therefore the median step of the notebook's whole run of 100 steps, timed in CPU time
in a fresh Python process that imports NumPy and micrograd only, so that neither this
benchmark's heap (PyTorch, the other benchmarks) nor a step's luck moves it. The mean
step of the same runs is within 2% of the median. (``--quick`` runs 10 steps.)

Fed Python floats instead of the notebook's NumPy numbers (as an earlier version of this
benchmark did, timing micrograd inside its own process, beside PyTorch), micrograd takes
the same time within noise when timed this way: 1.29 s against 1.25 s in back-to-back
30-step runs at load 5. The notebook's own imports (matplotlib, scikit-learn) did not
change its time measurably either (1.26 s with them, 1.31 s without, at load 2.6-3.4).
``MICROGRAD_REFERENCE`` is the figure used when micrograd is not installed.

Below its table the benchmark prints the step's phases (forward, loss with accuracy, L2
term, zero_grad + backward, update) for chainrule and the NumPy step, in CPU time in the
same run: where a missed target's time goes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _timing import Table, assert_close, fmt_ratio, fmt_time, interleaved
from micrograd_notebook import ALPHA, HIDDEN, POINTS, STEPS, learning_rate, moons

import chainrule as cr
from chainrule import nn, optim

TARGET = 10_000  # times micrograd's speed
NOTEBOOK = Path(__file__).resolve().parent / "micrograd_notebook.py"
# micrograd 0.1.0 (PyPI), Python 3.11.7, on the 2-core machine `make bench` prints in its
# header, 2026-12-02: the median step, in CPU time, of the notebook's run of 100 steps in
# a fresh process (``micrograd_notebook.py``): 1.12 s and 1.16 s in two `make bench` runs
# on the idle machine (load about 1); 1.26-1.34 s at load 2.6-7.
MICROGRAD_REFERENCE = 1.14


PHASES = ("forward", "loss + accuracy", "L2 term", "zero_grad + backward", "update")


def _run(phases):
    """Run one step of a phase generator to its end."""
    for _ in phases():
        pass


def chainrule_demo(x, y, seed=1337):
    """The notebook's step as a chainrule user writes it: ``(model, step, phases)``;
    ``phases()`` is the step as a generator that yields after each phase (for timing)."""
    model = nn.MLP(2, list(HIDDEN), 1, seed=seed)
    opt = optim.SGD(model.parameters(), lr=1.0)
    inputs, labels = cr.tensor(x), cr.tensor(y)
    k = 0
    losses = []

    def phases():
        nonlocal k
        scores = model(inputs).reshape(-1)
        yield
        data_loss = cr.relu(1 - labels * scores).mean()  # the SVM max-margin loss
        accuracy = ((scores.data > 0) == (y > 0)).mean()
        yield
        reg_loss = ALPHA * sum((p * p).sum() for p in model.parameters())
        total_loss = data_loss + reg_loss
        yield
        opt.zero_grad()
        total_loss.backward()
        yield
        for group in opt.param_groups:
            group["lr"] = learning_rate(k)
        opt.step()
        k += 1
        losses.append((total_loss.item(), accuracy))
        yield

    def step():
        _run(phases)
        return losses.pop()

    return model, step, phases


def numpy_demo(model, x, y):
    """The same step by hand, on copies of the chainrule model's initial weights:
    ``(step, phases)`` as ``chainrule_demo``."""
    w = [p.data.copy() for p in model.parameters()]  # W1, b1, W2, b2, W3, b3
    k = 0
    losses = []

    def phases():
        nonlocal k
        w1, b1, w2, b2, w3, b3 = w
        z1 = x @ w1.T + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ w2.T + b2
        h2 = np.maximum(z2, 0)
        scores = (h2 @ w3.T + b3).reshape(-1)
        yield
        margin = 1 - y * scores
        data_loss = np.maximum(margin, 0).mean()
        accuracy = ((scores > 0) == (y > 0)).mean()
        yield
        loss = data_loss + ALPHA * sum((p * p).sum() for p in w)
        yield
        g_scores = ((margin > 0) * -y / len(y)).astype(np.float32)[:, None]
        g = [None] * 6
        g[4], g[5] = g_scores.T @ h2, g_scores.sum(0)
        g_h2 = g_scores @ w3 * (z2 > 0)
        g[2], g[3] = g_h2.T @ h1, g_h2.sum(0)
        g_h1 = g_h2 @ w2 * (z1 > 0)
        g[0], g[1] = g_h1.T @ x, g_h1.sum(0)
        yield
        lr = learning_rate(k)
        for p, gp in zip(w, g):  # the L2 term's gradient, 2 alpha p, folded in
            p -= lr * (gp + 2 * ALPHA * p)
        k += 1
        losses.append((float(loss), accuracy))
        yield

    def step():
        _run(phases)
        return losses.pop()

    return step, phases


def micrograd_reference(steps):
    """micrograd's median step over the notebook's run (``steps`` steps) in a fresh process,
    and the run's mean step; None if micrograd is not installed."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(NOTEBOOK), str(steps)], env=env,
                          capture_output=True, text=True)
    if done.returncode == 3:  # micrograd is not installed
        return None
    if done.returncode != 0:
        raise RuntimeError(f"micrograd's run failed:\n{done.stderr}")
    times = json.loads(done.stdout)["times"]
    return statistics.median(times), statistics.mean(times)


def check(x, y) -> None:
    """chainrule and the NumPy step follow the same losses and accuracies for a few steps."""
    model, cr_step, _ = chainrule_demo(x, y)
    np_step, _ = numpy_demo(model, x, y)
    for i in range(5):
        (cr_loss, cr_acc), (np_loss, np_acc) = cr_step(), np_step()
        assert_close(f"micrograd demo: loss at step {i}", cr_loss, np_loss, rtol=1e-4)
        assert_close(f"micrograd demo: accuracy at step {i}", cr_acc, np_acc)


def phase_times(phase_steps: dict, repeats: int) -> dict:
    """Median CPU seconds of each phase of each candidate's step, the candidates taking
    turns step by step."""
    clock = time.process_time
    samples = {name: [[] for _ in PHASES] for name in phase_steps}
    for i in range(repeats + 3):
        for name, phases in phase_steps.items():
            marks = [clock()]
            for _ in phases():
                marks.append(clock())
            if i >= 3:  # warm-up
                for j, (a, b) in enumerate(zip(marks, marks[1:])):
                    samples[name][j].append(b - a)
    return {name: [statistics.median(s) for s in per_phase]
            for name, per_phase in samples.items()}


def run(quick=False) -> Table:
    x, y = moons()
    check(x, y)
    model, cr_step, cr_phases = chainrule_demo(x, y)
    np_step, np_phases = numpy_demo(model, x, y)
    steps = {"chainrule": cr_step, "numpy": np_step}
    repeats, inner = (21, 10) if quick else (101, 20)
    timings = interleaved(steps, repeats=repeats, warmup=3, inner=inner, clock=time.process_time)
    phases = phase_times({"chainrule": cr_phases, "numpy": np_phases},
                         repeats=200 if quick else 1000)
    cr_seconds = timings.median("chainrule")

    mg_steps = 10 if quick else STEPS
    measured = micrograd_reference(mg_steps)
    if measured is None:
        mg_seconds, source = MICROGRAD_REFERENCE, "reference (micrograd is not installed)"
    else:
        mg_seconds, mean = measured
        source = (f"median step of the notebook's {mg_steps}-step run, timed in a fresh "
                  f"process in this run; mean step {fmt_time(mean)}")
    speedup = mg_seconds / cr_seconds
    table = Table(
        f"6. micrograd's demo step: MLP 2-{HIDDEN[0]}-{HIDDEN[1]}-1, {POINTS} points, "
        "SVM loss + L2, accuracy, SGD (CPU time per step)",
        notes=[f"micrograd: {fmt_time(mg_seconds)} per step ({source}; see the docstring "
               "of bench/micrograd_demo.py)",
               "checked first: chainrule and the NumPy step give the same losses and "
               "accuracies"])
    table.add("step", fmt_time(cr_seconds), fmt_time(timings.median("numpy")), "n/a",
              fmt_ratio(timings.ratio("chainrule", "numpy")), "",
              f">= {TARGET:,}x micrograd", speedup >= TARGET)
    table.add("speed-up over micrograd", f"{speedup:,.0f}x", "", "", "", "",
              f">= {TARGET:,}x", None)
    for name, cr_phase, np_phase in zip(PHASES, phases["chainrule"], phases["numpy"]):
        table.add(f"  phase: {name}", fmt_time(cr_phase), fmt_time(np_phase), "n/a",
                  f"{cr_phase / np_phase:.2f}x", "", "-", None)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
