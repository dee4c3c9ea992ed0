"""Where chainrule's time goes in one training step (benchmarks 2 and 3).

    python bench/profile_steps.py [--steps N] [--cprofile]

Prints, for the raw-Tensor step of benchmark 2 and the library steps of benchmark 3:

1. phases: forward, loss, zero_grad, backward, optimizer step, each against the NumPy
   reference's forward+backward and Adam (medians over steps, one thread);
2. per operation: time in ``Function.apply`` (forward with its bookkeeping) and in the
   backward rule, and the engine's own share of ``backward()`` (ordering, accumulation,
   shape and dtype fixes);
3. an audit: any result in float64 computed from float32 data, any gradient a rule
   computed for an input that needs none, any gradient the engine had to cast back;
4. with ``--cprofile``: cProfile's top functions by own time.

It only observes: the library is wrapped at run time, in this process, never edited.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mlp_step  # noqa: E402
import numpy as np  # noqa: E402
import train_step  # noqa: E402
from _numpy_ref import NumpyAdam, NumpyMLP  # noqa: E402
from _timing import fix_threads  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import engine, optim  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402


# ----- 1. phases --------------------------------------------------------------------------
def phase_table(batch, sizes, steps):
    x, y, model = train_step.make_problem(batch, sizes)
    net = NumpyMLP.from_chainrule(model)
    opt, np_opt = optim.Adam(model.parameters(), lr=1e-3), NumpyAdam(net.params(), lr=1e-3)
    times = defaultdict(list)
    for i in range(steps + 3):
        marks = [time.perf_counter()]
        scores = model(x)
        marks.append(time.perf_counter())
        loss = F.cross_entropy(scores, y)
        marks.append(time.perf_counter())
        opt.zero_grad()
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        opt.step()
        marks.append(time.perf_counter())
        _, grads, _ = net.loss_and_grads(x, y)
        marks.append(time.perf_counter())
        np_opt.step(grads)
        marks.append(time.perf_counter())
        if i >= 3:  # warm-up
            for name, a, b in zip(("forward", "loss", "zero_grad", "backward", "step",
                                   "numpy fwd+bwd", "numpy adam"), marks, marks[1:]):
                times[name].append(b - a)
    med = {k: float(np.median(v)) * 1e6 for k, v in times.items()}
    cr_fb = med["forward"] + med["loss"] + med["backward"]
    print(f"\n[phases] batch {batch}, {'-'.join(map(str, sizes))}: median us per step")
    for k, v in med.items():
        print(f"  {k:14s} {v:10.1f}")
    print(f"  chainrule forward+loss+backward {cr_fb:.1f} us vs numpy {med['numpy fwd+bwd']:.1f}"
          f" us: +{cr_fb - med['numpy fwd+bwd']:.1f} us;  zero_grad+step "
          f"{med['zero_grad'] + med['step']:.1f} us vs numpy adam {med['numpy adam']:.1f} us")


# ----- 2. and 3. per operation, and the audit -------------------------------------------
class Recorder:
    """Watches every operation (``engine.operation_hook``) and wraps each backward rule,
    the engine's ``backward`` and its storing of leaf gradients, to time each operation
    and audit dtypes and copies. ``step_done()`` after each step closes that step's sums;
    the report gives medians over steps."""

    def __init__(self):
        self.forward, self.backward = defaultdict(float), defaultdict(float)
        self.calls = defaultdict(int)
        self.total_backward = 0.0
        self.steps = defaultdict(list)  # (kind, op) -> one sum per step
        self.findings = set()

    def step_done(self):
        for kind, sums in (("apply", self.forward), ("backward", self.backward)):
            for name, value in sums.items():
                self.steps[kind, name].append(value)
            sums.clear()
        self.steps["total", "backward"].append(self.total_backward)
        self.total_backward = 0.0

    def __enter__(self):
        self._saved = (engine.operation_hook, engine.backward, engine._store_grad)
        self._rules = {cls: cls.__dict__["backward"] for cls in engine.OPERATIONS.values()
                       if "backward" in cls.__dict__}
        original_backward, original_store = self._saved[1:]
        recorder = self

        def apply(cls, inputs, params):
            start = time.perf_counter()
            out = engine.apply_unhooked(cls, inputs, params)
            recorder.forward[cls.__name__] += time.perf_counter() - start
            recorder.calls[cls.__name__] += 1
            floats = {a.dtype for a in map(engine._forward_value, inputs)
                      if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
            if out.dtype == np.float64 and floats == {np.dtype(np.float32)}:
                recorder.findings.add(f"float64 forward result of {cls.__name__} from float32")
            return out

        def timed_rule(cls, rule):
            def run(ctx, upstream):
                start = time.perf_counter()
                result = rule(ctx, upstream)
                name = cls.__name__
                recorder.backward[name] += time.perf_counter() - start
                for parent, need, d in zip(ctx.parents, ctx.needs_input_grad,
                                           result if isinstance(result, tuple) else (result,)):
                    if d is None:
                        continue
                    if not need:
                        recorder.findings.add(f"{name}.backward computed a gradient for an "
                                              "input that needs none")
                    elif getattr(d, "dtype", None) != parent.dtype:
                        recorder.findings.add(f"{name}.backward returned {d.dtype} for a "
                                              f"{parent.dtype} input (the engine casts it back)")
                return result
            return staticmethod(run)

        def backward(*args, **kwargs):
            start = time.perf_counter()
            original_backward(*args, **kwargs)
            recorder.total_backward += time.perf_counter() - start

        def store_grad(t, g, owned, create_graph):
            if not owned and not create_graph and t.grad is None:
                recorder.findings.add(f"a leaf gradient of shape {t.shape} was copied "
                                      "(its array was shared with another gradient)")
            original_store(t, g, owned, create_graph)

        engine.operation_hook = apply
        for cls, rule in self._rules.items():
            cls.backward = timed_rule(cls, rule.__get__(None, cls))
        engine.backward = cr.Tensor.backward = backward
        engine._store_grad = store_grad
        return self

    def __exit__(self, *exc):
        engine.operation_hook, engine.backward, engine._store_grad = self._saved
        cr.Tensor.backward = engine.backward
        for cls, rule in self._rules.items():
            cls.backward = rule
        return False

    def report(self, title, steps):
        def med(kind, name):
            return float(np.median(self.steps.get((kind, name), [0.0]))) * 1e6

        print(f"\n[per operation] {title}: median us per step (apply = forward + recording)")
        names = sorted({n for _, n in self.steps} - {"backward"},
                       key=lambda n: -med("apply", n) - med("backward", n))
        for name in names:
            print(f"  {name:14s} x{self.calls[name] // steps:<3d} apply {med('apply', name):9.1f}"
                  f"   backward rule {med('backward', name):9.1f}")
        total = med("total", "backward")
        rules = float(np.median(np.sum([v for (k, _), v in self.steps.items()
                                        if k == "backward"], axis=0))) * 1e6
        print(f"  backward(): {total:.1f} us, of which rules {rules:.1f} us and the engine's "
              f"bookkeeping about {total - rules:.1f} us")
        for finding in sorted(self.findings) or ["no float64 upcast, no gradient computed for "
                                                 "an input needing none, no cast-back, no "
                                                 "copied leaf gradient"]:
            print(f"  audit: {finding}")


def per_op(title, step, steps):
    for _ in range(3):
        step()
    with Recorder() as rec:
        for _ in range(steps):
            step()
            rec.step_done()
    rec.report(title, steps)


def library_step(batch, sizes):
    x, y, model = train_step.make_problem(batch, sizes)
    return train_step.chainrule_step(model, x, y)


def raw_step(kind):
    x, y, weights = mlp_step.make_problem()
    return mlp_step.chainrule_step(x, y, mlp_step._cr_params(weights), kind)


def top_functions(title, step, steps, limit=22):
    """cProfile's functions with the most own time, in microseconds per step (cProfile's
    own overhead inflates every Python call, so read the ranking more than the numbers)."""
    for _ in range(3):
        step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:limit]
    total = sum(v[2] for v in stats.values())
    print(f"\n[cProfile] {title}: {total / steps * 1e6:.1f} us per step under the profiler; "
          f"top {limit} by own time (us per step)")
    print(f"  {'calls':>6} {'own':>8} {'incl.':>8}  function")
    for (path, line, name), (_, ncalls, own, incl, _) in rows:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else ""
        print(f"  {ncalls / steps:6.1f} {own / steps * 1e6:8.1f} {incl / steps * 1e6:8.1f}  "
              f"{name} {where}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="profile chainrule's training steps")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args(argv)
    fix_threads()
    cases = {
        "bench 2, raw ops, log_softmax + index + mean": raw_step("log_softmax"),
        "bench 2, raw ops, F.cross_entropy": raw_step("fused"),
        "bench 3 tiny (64, 2-100-3)": library_step(64, (2, 100, 3)),
        "bench 3 medium (256, 784-512-10)": library_step(256, (784, 512, 10)),
    }
    phase_table(64, (2, 100, 3), args.steps * 4)
    phase_table(256, (784, 100, 10), args.steps * 2)  # benchmark 4's network
    phase_table(256, (784, 512, 10), args.steps)
    for title, step in cases.items():
        per_op(title, step, args.steps)
    if args.cprofile:
        for title in list(cases)[2:]:
            top_functions(title, cases[title], args.steps)


if __name__ == "__main__":
    main()
