"""Where an eager graph node's time goes (benchmark 1's chain of 50 ops on 4x4 float32).

    python bench/profile_engine.py

Prints CPU microseconds per node, medians over rounds, for: the bare NumPy forward and
forward + hand-derived backward (the arithmetic itself); chainrule's forward under
``no_grad`` (the arithmetic plus calling through Tensor, ops and ``Function.apply``);
its forward recording the graph; and the whole ``backward()``, which walks the nodes by
their ticks, newest first, with no topological sort. The differences are the engine's
bookkeeping, phase by phase.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_overhead as eo  # noqa: E402
import numpy as np  # noqa: E402
from _timing import fix_threads  # noqa: E402

import chainrule as cr  # noqa: E402

GRAPHS, ROUNDS = 20, 60


def profile():
    x0, w0 = eo._inputs()
    x, w = cr.tensor(x0, requires_grad=True), cr.tensor(w0, requires_grad=True)
    seed = np.ones_like(x0)
    by_hand = eo.numpy_chain(x0, w0)
    clock, per_node = time.process_time, GRAPHS * eo.NODES
    phases = {k: [] for k in ("numpy forward", "numpy forward + backward",
                              "forward, no_grad", "forward, recording",
                              "backward()")}
    for r in range(ROUNDS + 3):
        marks = [clock()]
        for _ in range(GRAPHS):
            by_hand(False)
        marks.append(clock())
        for _ in range(GRAPHS):
            by_hand(True)
        marks.append(clock())
        with cr.no_grad():
            for _ in range(GRAPHS):
                eo._cr_forward(x, w)
        marks.append(clock())
        outputs = [eo._cr_forward(x, w) for _ in range(GRAPHS)]
        marks.append(clock())
        for h in outputs:
            h.backward(seed)
        marks.append(clock())
        x.grad = w.grad = None
        if r >= 3:  # warm-up rounds
            for name, a, b in zip(phases, marks, marks[1:]):
                phases[name].append((b - a) / per_node * 1e6)
    return {name: float(np.median(v)) for name, v in phases.items()}


def main():
    fix_threads()
    us = profile()
    for name, value in us.items():
        print(f"{name:28s} {value:6.2f} us/node")
    np_backward = us["numpy forward + backward"] - us["numpy forward"]
    print("\nbookkeeping per node (chainrule minus the NumPy arithmetic):")
    print(f"  calling through Tensor/ops/apply, making the output  "
          f"{us['forward, no_grad'] - us['numpy forward']:5.2f} us")
    print(f"  recording the node (Context, needs, parents)         "
          f"{us['forward, recording'] - us['forward, no_grad']:5.2f} us")
    print(f"  backward: order, rules' calls, accumulation, release "
          f"{us['backward()'] - np_backward:5.2f} us")


if __name__ == "__main__":
    main()
