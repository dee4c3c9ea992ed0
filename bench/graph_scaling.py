"""Benchmark 5: the cost of a graph node as the graph grows, and its memory.

A chain of scalar operations (``h = h * 0.999999``, ``h = h + 1e-7``, repeated) is built
to 2e4, 2e5 and 2e6 nodes with Python's garbage collector on, as users run it, then
backpropagated. A node costs the same at every size when nothing does work in proportion
to the graph already built; the longest collector pause while building shows whether a
collection walked the whole graph. The time is this process's CPU time
(``time.process_time``), which other load on a shared machine disturbs less than wall
time and which includes the collector's work.

Memory per node is measured with ``tracemalloc`` while a 2e4-node chain is built: all of
it, and the part beyond the arrays the graph keeps (each node's 0-d output array, which
the next node saves as its input).
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

import numpy as np
from _timing import Table

import chainrule as cr

SIZES = (20_000, 200_000, 2_000_000)
QUICK_SIZES = (2_000, 20_000, 200_000)
FLAT_TARGET = 1.1  # largest size's cost per node at most this times the smallest's
MEMORY_TARGET = 300  # bytes per node beyond the arrays it saves


def build_chain(n):
    """A chain of ``n`` scalar operations from one leaf; returns (leaf, output)."""
    x = cr.tensor(1.0, requires_grad=True)
    h = x
    for _ in range(n // 2):
        h = h * 0.999999
        h = h + 1e-7
    return x, h


class _Pauses:
    """The longest garbage-collector pause, from ``gc.callbacks``, in CPU time (a wall
    clock would count the time other processes ran in between)."""

    def __init__(self):
        self.longest, self.started = 0.0, None

    def __call__(self, phase, info):
        if phase == "start":
            self.started = time.process_time()
        elif self.started is not None:
            self.longest = max(self.longest, time.process_time() - self.started)


def time_size(n, repeats):
    """Median CPU seconds per node to build and to backpropagate, and the longest pause."""
    build, back, pause = [], [], 0.0
    for _ in range(repeats):
        gc.collect()
        pauses = _Pauses()
        gc.callbacks.append(pauses)
        try:
            start = time.process_time()
            x, h = build_chain(n)
            built = time.process_time()
        finally:
            gc.callbacks.remove(pauses)
        h.backward()
        done = time.process_time()
        expected = float(np.float32(0.999999)) ** (n // 2)  # the factor as float32 holds it
        if not abs(x.grad.item() - expected) <= 1e-3 * expected:
            raise AssertionError(f"chain of {n}: d/dx = {x.grad.item()}, expected {expected}")
        del x, h
        build.append((built - start) / n)
        back.append((done - built) / n)
        pause = max(pause, pauses.longest)
    return float(np.median(build)), float(np.median(back)), pause


def memory_per_node(n=20_000):
    """(all bytes, bytes beyond the nodes' output arrays) per node of a chain of ``n``."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        x, h = build_chain(n)
        total = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    array = sys.getsizeof(h.data)  # an ndarray's object and its data
    return total / n, total / n - array


def run(quick=False) -> Table:
    sizes = QUICK_SIZES if quick else SIZES
    table = Table(
        "5. Cost per graph node as the graph grows: a chain of scalar ops (mul, add), "
        "garbage collector on, CPU time",
        notes=["per node: median CPU time of building the chain and of backward(); "
               "'pause': the longest garbage collection while building (CPU time)",
               "x of smallest: build cost per node over the smallest chain's (flat = 1.0x)",
               "checked: d(output)/dx of each chain equals float32(0.999999)^(n/2)"])
    first = None
    for i, n in enumerate(sizes):
        repeats = (5, 2, 1)[i]
        build, back, pause = time_size(n, repeats)
        first = build if first is None else first
        ratio = build / first
        table.add(f"build {n:.0e} nodes", f"{build * 1e6:.2f} us/node", "-", "-",
                  f"{ratio:.2f}x of smallest", f"pause {pause * 1e3:.1f} ms",
                  f"<= {FLAT_TARGET}x of smallest" if i else "-",
                  ratio <= FLAT_TARGET if i else None)
        table.add(f"backward {n:.0e} nodes", f"{back * 1e6:.2f} us/node", "-", "-", "", "",
                  "-", None)
    gc.disable()
    try:  # for reference: the same build with the collector off
        off, _, _ = time_size(sizes[0], 5)
    finally:
        gc.enable()
    table.add(f"build {sizes[0]:.0e}, collector off", f"{off * 1e6:.2f} us/node", "-", "-",
              f"{first / off:.2f}x: on / off", "", "-", None)
    total, beyond = memory_per_node()
    table.add("memory per node (2e4 chain)", f"{total:.0f} B", "-", "-",
              f"{beyond:.0f} B beyond arrays", "", f"<= {MEMORY_TARGET} B beyond arrays",
              beyond <= MEMORY_TARGET)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run(quick="--quick" in sys.argv).render())
