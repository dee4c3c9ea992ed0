"""Benchmark 6: micrograd's demo step, on arrays instead of scalars.

micrograd's demo notebook trains an MLP 2-16-16-1 (ReLU, linear output) on 100 points
of the two-moons data with an SVM max-margin loss, mean(relu(1 - y * score)), plus L2
regularisation 1e-4 * sum(p * p), by SGD with a learning rate falling from 1.0 by 0.9
over 100 steps. Here one such step (forward over the 100 points, loss, zero_grad,
backward, update) runs in chainrule with ``nn.MLP`` and ``optim.SGD``, and in NumPy by
hand, and its time is compared with micrograd's.

micrograd's reference: its repository publishes no timing, so its step is timed here.
micrograd (0.1.0, pure Python) is in the ``bench`` extra, so ``make bench`` times it in
the same run (``micrograd_demo`` below: the same step on micrograd's Values). Without it
the bench falls back to ``MICROGRAD_REFERENCE``, measured the same way on an idle
machine.
"""

from __future__ import annotations

import time

import numpy as np
from _timing import Table, assert_close, fmt_ratio, fmt_time, interleaved

import chainrule as cr
from chainrule import nn, optim

POINTS, HIDDEN, ALPHA, STEPS = 100, (16, 16), 1e-4, 100
TARGET = 10_000  # times micrograd's speed
# micrograd 0.1.0 (PyPI), Python 3.11.7, on the machine `make bench` prints in its header
# (2 cores, idle: load average under 1), 2026-12-01: seconds of CPU time per step of
# ``micrograd_demo`` below (Python floats as inputs), median of 9 steps. With NumPy
# floats as inputs, as micrograd's notebook has them, a step takes 1.25 s.
MICROGRAD_REFERENCE = 1.20


def moons(n=POINTS, noise=0.1, seed=0):
    """Two interleaving half circles, as sklearn's make_moons; labels -1 and +1."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    half = n // 2
    upper = np.c_[np.cos(t[:half]), np.sin(t[:half])]
    lower = np.c_[1 - np.cos(t[half:]), 0.5 - np.sin(t[half:])]
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.r_[-np.ones(half), np.ones(n - half)]
    return x.astype(np.float32), y.astype(np.float32)


def learning_rate(k):
    return 1.0 - 0.9 * (k % STEPS) / STEPS


def chainrule_demo(x, y, seed=1337):
    model = nn.MLP(2, list(HIDDEN), 1, seed=seed)
    params = list(model.parameters())
    opt = optim.SGD(params, lr=1.0)
    inputs, labels = cr.tensor(x), cr.tensor(y)
    k = 0

    def step():
        nonlocal k
        scores = model(inputs).reshape(-1)
        data_loss = cr.relu(1 - labels * scores).mean()
        reg_loss = ALPHA * sum((p * p).sum() for p in params)
        loss = data_loss + reg_loss
        opt.zero_grad()
        loss.backward()
        opt.param_groups[0]["lr"] = learning_rate(k)
        opt.step()
        k += 1
        return loss.item()

    return model, step


def numpy_demo(model, x, y):
    """The same step by hand, on copies of the chainrule model's initial weights."""
    w = [p.data.copy() for p in model.parameters()]  # W1, b1, W2, b2, W3, b3
    k = 0

    def step():
        nonlocal k
        w1, b1, w2, b2, w3, b3 = w
        z1 = x @ w1.T + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ w2.T + b2
        h2 = np.maximum(z2, 0)
        scores = (h2 @ w3.T + b3).reshape(-1)
        margin = 1 - y * scores
        loss = np.maximum(margin, 0).mean() + ALPHA * sum((p * p).sum() for p in w)
        g_scores = ((margin > 0) * -y / len(y)).astype(np.float32)[:, None]
        g = [None] * 6
        g[4], g[5] = g_scores.T @ h2, g_scores.sum(0)
        g_h2 = g_scores @ w3 * (z2 > 0)
        g[2], g[3] = g_h2.T @ h1, g_h2.sum(0)
        g_h1 = g_h2 @ w2 * (z1 > 0)
        g[0], g[1] = g_h1.T @ x, g_h1.sum(0)
        lr = learning_rate(k)
        for p, gp in zip(w, g):
            p -= lr * (gp + 2 * ALPHA * p)
        k += 1
        return float(loss)

    return step


def micrograd_demo(x, y):
    """micrograd's own step, if micrograd is installed (else None)."""
    try:
        import random

        from micrograd.engine import Value
        from micrograd.nn import MLP
    except ImportError:
        return None
    random.seed(1337)
    model = MLP(2, [*HIDDEN, 1])
    rows, labels = x.astype(float).tolist(), y.astype(float).tolist()
    k = 0

    def step():
        nonlocal k
        scores = [model(list(map(Value, row))) for row in rows]
        losses = [(1 + -yi * si).relu() for yi, si in zip(labels, scores)]
        loss = sum(losses) * (1.0 / len(losses)) + ALPHA * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        lr = learning_rate(k)
        for p in model.parameters():
            p.data -= lr * p.grad
        k += 1

    return step


def check(x, y) -> None:
    """chainrule and the NumPy step follow the same losses for a few steps."""
    model, cr_step = chainrule_demo(x, y)
    np_step = numpy_demo(model, x, y)
    for i in range(5):
        assert_close(f"micrograd demo: loss at step {i}", cr_step(), np_step(), rtol=1e-4)


def run(quick=False) -> Table:
    x, y = moons()
    check(x, y)
    model, cr_step = chainrule_demo(x, y)
    steps = {"chainrule": cr_step, "numpy": numpy_demo(model, x, y)}
    repeats, inner = (21, 10) if quick else (101, 20)
    timings = interleaved(steps, repeats=repeats, warmup=3, inner=inner, clock=time.process_time)
    cr_seconds = timings.median("chainrule")

    mg_step, source = micrograd_demo(x, y), "reference"
    mg_seconds = MICROGRAD_REFERENCE
    if mg_step is not None:
        mg_step()  # warm-up
        mg_seconds = float(np.median([_cpu_time(mg_step) for _ in range(3 if quick else 5)]))
        source = "timed in this run"
    speedup = mg_seconds / cr_seconds
    table = Table(
        f"6. micrograd's demo step: MLP 2-{HIDDEN[0]}-{HIDDEN[1]}-1, {POINTS} points, "
        "SVM loss + L2, SGD (CPU time per step)",
        notes=[f"micrograd: {fmt_time(mg_seconds)} per step ({source}; see "
               "MICROGRAD_REFERENCE in bench/micrograd_demo.py for where the reference "
               "comes from)",
               "checked first: chainrule and the NumPy step give the same losses"])
    table.add("step", fmt_time(cr_seconds), fmt_time(timings.median("numpy")), "n/a",
              fmt_ratio(timings.ratio("chainrule", "numpy")), "",
              f">= {TARGET:,}x micrograd", speedup >= TARGET)
    table.add("speed-up over micrograd", f"{speedup:,.0f}x", "", "", "", "",
              f">= {TARGET:,}x", None)
    return table


def _cpu_time(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
