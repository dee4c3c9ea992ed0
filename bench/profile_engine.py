"""Where an eager graph node's time goes (benchmark 1's chain of 50 ops on 4x4 float32).

    python bench/profile_engine.py

Prints CPU microseconds per node, medians over rounds, for: the bare NumPy forward and
forward + hand-derived backward (the arithmetic itself); chainrule's forward under
``no_grad`` (the arithmetic plus calling through Tensor, ops and ``Function.apply``);
its forward recording the graph; and the whole ``backward()``, which walks the nodes by
their ticks, newest first, with no topological sort. The differences are the engine's
bookkeeping, phase by phase.

It also runs the chain through ``bare_engine``: the least a Python autodiff engine can
do per node (a node is a tuple, operators are plain functions; no grad mode, no checks,
no release, no hooks). Its cost is the floor of the interpreter's own work, against
which chainrule's bookkeeping can be read. ``engine_overhead.py`` prints this profile
under its table whenever a per-node target is missed.
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


def bare_engine(x0, w0):
    """The chain forward + backward in a minimal engine of tuples and plain functions."""

    class Node:
        __slots__ = ("data", "grad", "node")  # node: (backward rule, parents, saved)

    def make(data, node=None):
        t = object.__new__(Node)
        t.data, t.grad, t.node = data, None, node
        return t

    def add(a, b):
        return make(a.data + b.data, (lambda g, saved: (g, g), (a, b), None))

    def mul(a, b):
        x, y = a.data, b.data
        return make(x * y, (lambda g, saved: (g * saved[1], g * saved[0]), (a, b), (x, y)))

    def sub(a, b):
        return make(a.data - b.data, (lambda g, saved: (g, -g), (a, b), None))

    def tanh(a):
        y = np.tanh(a.data)
        return make(y, (lambda g, saved: (g * (1 - saved * saved),), (a,), y))

    def exp(a):
        y = np.exp(a.data)
        return make(y, (lambda g, saved: (g * saved,), (a,), y))

    def backward(root, seed):
        order, seen, stack = [], set(), [root]
        while stack:  # depth-first, each tensor after its inputs
            t = stack.pop()
            if t is None:
                order.append(stack.pop())
            elif t not in seen:
                seen.add(t)
                if t.node is None:
                    order.append(t)
                else:
                    stack += (t, None, *t.node[1])
        grads = {root: seed}
        while order:
            t = order.pop()
            g = grads.pop(t, None)
            if g is None:
                continue
            if t.node is None:
                t.grad = g if t.grad is None else t.grad + g
                continue
            rule, parents, saved = t.node
            for parent, d in zip(parents, rule(g, saved)):
                previous = grads.get(parent)
                grads[parent] = d if previous is None else previous + d

    x, w, seed = make(x0), make(w0), np.ones_like(x0)

    def step():
        h = x
        for _ in range(eo.CYCLES):
            h = exp(sub(tanh(mul(add(h, w), w)), x))
        backward(h, seed)
        x.grad = w.grad = None

    return step


def profile(rounds=ROUNDS):
    x0, w0 = eo._inputs()
    x, w = cr.tensor(x0, requires_grad=True), cr.tensor(w0, requires_grad=True)
    seed = np.ones_like(x0)
    by_hand = eo.numpy_chain(x0, w0)
    clock, per_node = time.process_time, GRAPHS * eo.NODES
    phases = {k: [] for k in ("numpy forward", "numpy forward + backward",
                              "forward, no_grad", "forward, recording",
                              "backward()", "bare engine forward + backward")}
    bare = bare_engine(x0, w0)
    for r in range(rounds + 3):
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
        for _ in range(GRAPHS):
            bare()
        marks.append(clock())
        if r >= 3:  # warm-up rounds
            for name, a, b in zip(phases, marks, marks[1:]):
                phases[name].append((b - a) / per_node * 1e6)
    return {name: float(np.median(v)) for name, v in phases.items()}


def explain(us) -> list[str]:
    """Lines saying where a node's time goes, from ``profile()``'s phases."""
    np_forward, np_both = us["numpy forward"], us["numpy forward + backward"]
    ours = us["forward, recording"] + us["backward()"]
    bare = us["bare engine forward + backward"]
    parts = [
        ("NumPy's arithmetic, forward and backward", np_both),
        ("calling through Tensor, ops and apply; making the output",
         us["forward, no_grad"] - np_forward),
        ("recording the node", us["forward, recording"] - us["forward, no_grad"]),
        ("backward: order, rules' Python, accumulation, checks, release",
         us["backward()"] - (np_both - np_forward)),
    ]
    lines = [f"where a node's {ours:.2f} us go (forward recording + backward(), "
             "measured apart):"]
    lines += [f"  {value:5.2f} us  {what}" for what, value in parts]
    lines.append(f"  floor: a bare Python engine (tuples, plain functions, no checks) takes "
                 f"{bare:.2f} us a node, {bare - np_both:.2f} us above NumPy's arithmetic")
    return lines


def main():
    fix_threads()
    us = profile()
    for name, value in us.items():
        print(f"{name:32s} {value:6.2f} us/node")
    print()
    print("\n".join(explain(us)))


if __name__ == "__main__":
    main()
