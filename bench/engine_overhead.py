"""Benchmark 1: the engine's cost per graph node.

A chain of 50 elementwise operations (add, multiply, tanh, subtract, exp, repeated) on
4x4 float32 arrays is so small that the arithmetic costs almost nothing: what is measured
is the bookkeeping of recording a node and of running its backward rule. Compared with
NumPy doing the same forward and hand-derived backward arithmetic, and PyTorch autograd.
Timed in CPU time (``time.process_time``): microsecond figures in wall time mostly
measure the other processes of a shared machine.
"""

from __future__ import annotations

import time

import numpy as np
from _timing import Table, assert_close, fmt_ratio, interleaved, torch

import chainrule as cr

CYCLES = 10  # each cycle is 5 operations
NODES = 5 * CYCLES
TARGET_US = 2.0


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 4)).astype(np.float32)
    w = (0.5 * rng.standard_normal((4, 4))).astype(np.float32)
    return x, w


def chainrule_chain(x0, w0):
    x, w = cr.tensor(x0, requires_grad=True), cr.tensor(w0, requires_grad=True)
    seed = np.ones_like(x0)

    def step(grad=True):
        if not grad:
            with cr.no_grad():
                return _cr_forward(x, w)
        h = _cr_forward(x, w)
        h.backward(seed)
        gx, gw = x.grad, w.grad
        x.grad = w.grad = None
        return gx, gw

    return step


def compiled_chain(x0, w0):
    """The chain in a step compiled with ``cr.compile``: gradients reset by an optimizer's
    zero_grad (a replay must see the reset), every op replayed without a graph."""
    x, w = cr.tensor(x0, requires_grad=True), cr.tensor(w0, requires_grad=True)
    resetter = cr.optim.SGD([x, w], lr=0.0)
    seed = np.ones_like(x0)

    def train_step():
        resetter.zero_grad()
        _cr_forward(x, w).backward(seed)

    replay = cr.compile(train_step)

    def step(grad=True):
        replay()
        return x.grad, w.grad

    return step


def _cr_forward(x, w):
    h = x
    for _ in range(CYCLES):
        h = cr.exp(cr.tanh((h + w) * w) - x)
    return h


def numpy_chain(x, w):
    """The same arithmetic by hand: the forward keeps what the backward needs."""
    seed = np.ones_like(x)

    def step(grad=True):
        h, saved = x, []
        for _ in range(CYCLES):
            a = h + w
            c = np.tanh(a * w)
            h = np.exp(c - x)
            saved.append((a, c, h))
        if not grad:
            return h
        g, gx, gw = seed, np.zeros_like(x), np.zeros_like(w)
        for a, c, e in reversed(saved):
            g = g * e  # exp
            gx -= g  # - x
            g *= 1 - c * c  # tanh
            gw += g * a  # (a * w) with respect to w
            g *= w  # ... and to a
            gw += g  # (h + w) with respect to w
        gx += g  # the chain started at x
        return gx, gw

    return step


def torch_chain(x0, w0):
    x = torch.tensor(x0, requires_grad=True)
    w = torch.tensor(w0, requires_grad=True)
    seed = torch.ones_like(x)

    def step(grad=True):
        if not grad:
            with torch.no_grad():
                return _torch_forward(x, w)
        h = _torch_forward(x, w)
        h.backward(seed)
        gx, gw = x.grad, w.grad
        x.grad = w.grad = None
        return gx.numpy(), gw.numpy()

    return step


def _torch_forward(x, w):
    h = x
    for _ in range(CYCLES):
        h = torch.exp(torch.tanh((h + w) * w) - x)
    return h


def check(steps) -> None:
    """Every implementation computes the same gradients."""
    want = steps["numpy"]()
    for name, step in steps.items():
        got = step()
        for label, a, b in zip(("x", "w"), got, want):
            assert_close(f"engine chain: {name} d/d{label}", a, b, rtol=1e-4)


def run(quick=False) -> Table:
    x, w = _inputs()
    steps = {"chainrule": chainrule_chain(x, w), "numpy": numpy_chain(x, w)}
    if torch is not None:
        steps["torch"] = torch_chain(x, w)
    check(steps)
    repeats, inner = (21, 10) if quick else (101, 20)
    table = Table(
        f"1. Engine overhead: a chain of {NODES} elementwise ops (add, mul, tanh, sub, exp) "
        "on 4x4 float32, CPU time per node",
        notes=["forward+backward: build the graph, backward(gradient=ones), read .grad; "
               "numpy: the same forward and the hand-derived backward",
               "checked first: the gradients of x and w agree between all implementations"])
    for case, grad in (("forward + backward", True), ("forward only (no_grad)", False)):
        timings = interleaved({k: (lambda s=s, g=grad: s(g)) for k, s in steps.items()},
                              repeats=repeats, warmup=3, inner=inner, clock=time.process_time)
        per_node = {k: timings.median(k) / NODES * 1e6 for k in steps}
        cr_us = per_node["chainrule"]
        table.add(
            case, f"{cr_us:.2f} us/node", f"{per_node['numpy']:.2f} us/node",
            f"{per_node['torch']:.2f} us/node" if "torch" in per_node else "n/a",
            fmt_ratio(timings.ratio("chainrule", "numpy")),
            fmt_ratio(timings.ratio("chainrule", "torch")) if "torch" in timings else "n/a",
            f"<= {TARGET_US:g} us/node" if grad else "-",
            cr_us <= TARGET_US if grad else None,
        )
    if table.misses:  # the "where missed, the profile that says where the rest goes"
        import profile_engine  # it imports this module: imported here, not at the top

        table.notes += profile_engine.explain(profile_engine.profile(10 if quick else 40))
    compiled = compiled_chain(x, w)
    compiled()  # the recording: the check below sees a replay
    check({"compiled": compiled, "numpy": steps["numpy"]})
    timings = interleaved({"compiled": compiled, "chainrule": steps["chainrule"],
                           "numpy": steps["numpy"]}, repeats=repeats, warmup=3, inner=inner)
    compiled_us = timings.median("compiled") / NODES * 1e6
    table.add("forward + backward, compiled (cr.compile; no buffer kernels for these ops)",
              f"{compiled_us:.2f} us/node", f"{timings.median('numpy') / NODES * 1e6:.2f} us/node",
              "n/a", fmt_ratio(timings.ratio("compiled", "numpy")), "n/a",
              f"{timings.ratio('compiled', 'chainrule')[0]:.2f}x eager", None)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
