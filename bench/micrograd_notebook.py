"""micrograd's demo notebook's training loop, timed in a process of its own.

    python bench/micrograd_notebook.py [STEPS]    # prints {"times": [...], ...} as JSON

The reference of benchmark 6 (``micrograd_demo.py``, which runs this file in a fresh
process and reads its output). It imports NumPy and micrograd only: not chainrule, not
the benchmarks' helpers (which load PyTorch), so micrograd's garbage collections walk
the heap of a plain script, as in the notebook. Exits with 3 if micrograd is missing.

The problem is defined here and shared with ``micrograd_demo.py``: the two-moons data,
the network's hidden sizes, the L2 factor and the learning-rate schedule.
"""

from __future__ import annotations

import json
import random
import sys
import time

import numpy as np

POINTS, HIDDEN, ALPHA, STEPS = 100, (16, 16), 1e-4, 100


def moons(n=POINTS, noise=0.1, seed=0):
    """Two interleaving half circles, as sklearn's make_moons; labels -1 and +1
    (float32 both)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    half = n // 2
    upper = np.c_[np.cos(t[:half]), np.sin(t[:half])]
    lower = np.c_[1 - np.cos(t[half:]), 0.5 - np.sin(t[half:])]
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.r_[-np.ones(half), np.ones(n - half)]
    return x.astype(np.float32), y.astype(np.float32)


def learning_rate(k):
    """The notebook's schedule, 1.0 falling by 0.9 over a run of STEPS steps (repeating
    after that, so that a benchmark may run more steps)."""
    return 1.0 - 0.9 * (k % STEPS) / STEPS


def notebook_run(steps=STEPS, seed=1337):
    """The notebook's loop on micrograd, step for step: seconds of CPU time of each of
    its ``steps`` steps, and the last loss and accuracy.

    The notebook feeds NumPy float64 rows (sklearn's ``make_moons``) into ``Value``s and
    NumPy int labels, so micrograd computes on NumPy scalars (its parameters too, after
    the first update); here on ``moons()``'s points as float64 and its labels as int64.
    """
    from micrograd.engine import Value
    from micrograd.nn import MLP

    np.random.seed(seed)
    random.seed(seed)
    x, y = moons()
    x, y = x.astype(np.float64), y.astype(np.int64)
    model = MLP(2, [*HIDDEN, 1])

    def loss():
        inputs = [list(map(Value, row)) for row in x]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]  # max-margin loss
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        accuracy = [(yi > 0) == (si.data > 0) for yi, si in zip(y, scores)]
        return data_loss + reg_loss, sum(accuracy) / len(accuracy)

    times = []
    for k in range(steps):
        start = time.process_time()
        total_loss, accuracy = loss()
        model.zero_grad()
        total_loss.backward()
        lr = learning_rate(k)
        for p in model.parameters():
            p.data -= lr * p.grad
        times.append(time.process_time() - start)
    return {"times": times, "loss": float(total_loss.data), "accuracy": float(accuracy)}


if __name__ == "__main__":
    try:
        import micrograd  # noqa: F401
    except ImportError:
        sys.exit(3)
    print(json.dumps(notebook_run(int(sys.argv[1]) if sys.argv[1:] else STEPS)))
