"""Shared helpers of the benchmarks: fixed threads, the header, interleaved timing, tables.

Every figure is a ratio measured in one process: the candidates of a benchmark run
interleaved after a warm-up, round after round, each round running every candidate once;
a ratio is the median over rounds of the per-round ratio (each round's candidates ran
back to back, so slow drifts of the machine cancel out). The order within a round is
shuffled (with a fixed seed): a candidate that runs right after PyTorch finds colder
caches, and that penalty, a few percent, must not always fall on the same one.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

THREADS = 1
_limits = None  # keeps threadpoolctl's limit alive for the whole run

try:
    import torch
except ImportError:  # PyTorch is optional: its columns then read "n/a"
    torch = None


def fix_threads(threads: int = THREADS):
    """Limit every BLAS/OpenMP pool (NumPy's and PyTorch's) to ``threads`` threads."""
    global _limits
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=threads)
    if torch is not None:
        torch.set_num_threads(threads)


def header() -> str:
    """What the figures were measured on: versions, BLAS libraries, threads, environment."""
    from threadpoolctl import threadpool_info

    import chainrule

    lines = ["chainrule benchmarks", "=" * 20]
    lines.append(f"machine: {_cpu_name()}, {os.cpu_count()} logical cores; "
                 f"Python {platform.python_version()}")
    lines.append(f"chainrule {chainrule.__version__} ({_git_revision()}), numpy {np.__version__}, "
                 f"torch {torch.__version__ if torch is not None else 'not installed'}")
    for pool in threadpool_info():
        lines.append(f"thread pool: {pool.get('internal_api')} {pool.get('version') or ''} "
                     f"({pool.get('architecture') or pool.get('user_api')}), "
                     f"num_threads={pool.get('num_threads')}  [{Path(pool['filepath']).name}]")
    if torch is not None:
        lines.append(f"torch: num_threads={torch.get_num_threads()}, BLAS "
                     f"{'MKL' if torch.backends.mkl.is_available() else 'not MKL'}")
    env = {k: v for k, v in sorted(os.environ.items())
           if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    lines.append("environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "none set"))
    lines.append(f"threads: all BLAS/OpenMP pools limited to {THREADS} (threadpoolctl"
                 f"{', torch.set_num_threads' if torch is not None else ''}); float32 "
                 "throughout; gc left on")
    lines.append("ratios: median over rounds of per-round time ratios (candidates interleaved, "
                 "each once per round in a shuffled order, after warm-up); (q25-q75) in brackets")
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or "no git"
    except (OSError, subprocess.SubprocessError):
        return "no git"


# ----- timing ----------------------------------------------------------------------------
@dataclass
class Timings:
    """Seconds per call of each candidate, one entry per round."""

    rounds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return float(np.median(self.rounds[name]))

    def ratio(self, a: str, b: str) -> tuple[float, float, float]:
        """(median, q25, q75) of the per-round ratios time(a) / time(b)."""
        r = np.asarray(self.rounds[a]) / np.asarray(self.rounds[b])
        return float(np.median(r)), float(np.quantile(r, 0.25)), float(np.quantile(r, 0.75))

    def __contains__(self, name: str) -> bool:
        return name in self.rounds


def interleaved(candidates: dict, repeats: int, warmup: int = 2, inner: int = 1,
                clock=time.perf_counter) -> Timings:
    """Time each candidate ``repeats`` times, one round after another, every candidate
    once per round in a shuffled order; one sample is ``inner`` calls.

    ``candidates`` maps a name to a function of no argument; its result is ignored.
    ``clock`` is wall time by default; ``time.process_time`` (this process's CPU time)
    is steadier on a loaded machine and still counts the garbage collector's work.
    """
    for _ in range(warmup):
        for fn in candidates.values():
            for _ in range(inner):
                fn()
    result = Timings({name: [] for name in candidates})
    rng = np.random.default_rng(0)
    names = list(candidates)
    for _ in range(repeats):
        for name in rng.permutation(names):
            fn = candidates[name]
            start = clock()
            for _ in range(inner):
                fn()
            result.rounds[name].append((clock() - start) / inner)
    return result


def interleaved_segments(candidates: dict, repeats: int, warmup: int = 0) -> Timings:
    """Like ``interleaved`` for long runs (an epoch): a round runs every candidate once in
    full, but they take turns every few steps, so a burst of load from elsewhere on the
    machine falls on all of them alike.

    ``candidates`` maps a name to a function ``run(tick)`` that calls ``tick()`` every few
    steps; each runs in its own thread, and exactly one thread runs at any time. The turns
    go round in an order shuffled anew every time round.
    """
    result = Timings({name: [] for name in candidates})
    rng = np.random.default_rng(0)
    for r in range(warmup + repeats):
        seconds = _segmented_round(candidates, rng)
        if r >= warmup:
            for name, value in seconds.items():
                result.rounds[name].append(value)
    return result


def _segmented_round(candidates: dict, rng) -> dict:
    names = list(candidates)
    turn = {name: threading.Event() for name in names}
    elapsed, finished, errors = dict.fromkeys(names, 0.0), set(), []
    all_done = threading.Event()
    queue = []  # who runs next: the rest of this time round

    def pass_turn(name):
        while True:
            while queue and queue[0] in finished:
                queue.pop(0)
            if queue:
                turn[queue.pop(0)].set()
                return
            waiting = [n for n in names if n not in finished]
            if not waiting:
                all_done.set()
                return
            queue.extend(rng.permutation(waiting).tolist())

    def wait_turn(name):
        turn[name].wait()
        turn[name].clear()
        return time.perf_counter()

    def worker(name):
        started = wait_turn(name)

        def tick():
            nonlocal started
            elapsed[name] += time.perf_counter() - started
            pass_turn(name)
            started = wait_turn(name)

        try:
            candidates[name](tick)
        except BaseException as e:  # re-raised in the main thread
            errors.append(e)
        finally:
            elapsed[name] += time.perf_counter() - started
            finished.add(name)
            pass_turn(name)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    queue.extend(rng.permutation(names).tolist())
    turn[queue.pop(0)].set()
    all_done.wait()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return elapsed


def peak_memory(step, warmup: int = 2, reset=None) -> int:
    """Peak bytes allocated (as tracemalloc sees them, NumPy included) during one ``step()``,
    above what was allocated when it started; measured after ``warmup`` calls.

    ``reset()``, if given, runs just before the measured step: it frees what a previous
    step left behind that the step itself replaces (e.g. ``optimizer.zero_grad()``), so
    that the baseline holds only what lives across steps (weights, optimizer state).
    """
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(warmup):
            step()
        if reset is not None:
            reset()
        gc.collect()
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


# ----- checks ----------------------------------------------------------------------------
class CheckFailed(AssertionError):
    """Two implementations disagree: their timings would not compare like with like."""


def assert_close(what: str, actual, expected, rtol: float = 1e-4, atol: float = 1e-6):
    """Raise ``CheckFailed`` unless ``actual`` and ``expected`` agree in float32 tolerance,
    measured against the largest magnitude of ``expected``."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise CheckFailed(f"{what}: shape {actual.shape} != {expected.shape}")
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    scale = float(np.max(np.abs(expected), initial=0.0))
    if not err <= atol + rtol * scale:
        raise CheckFailed(f"{what}: max abs difference {err:.3g} (largest value {scale:.3g})")
    return err / max(scale, atol)


# ----- tables ----------------------------------------------------------------------------
COLUMNS = ("case", "chainrule", "numpy", "torch", "chainrule/numpy", "chainrule/torch",
           "target", "met?")


class Table:
    """One benchmark's results, printed as a plain-text table."""

    def __init__(self, title: str, notes=()):
        self.title, self.notes, self.rows = title, list(notes), []
        self.misses = 0

    def add(self, case, chainrule, numpy, torch="n/a", vs_numpy="", vs_torch="",
            target="-", met=None):
        if met is False:
            self.misses += 1
        mark = "-" if met is None else ("yes" if met else "NO")
        self.rows.append((case, chainrule, numpy, torch, vs_numpy, vs_torch, target, mark))

    def render(self) -> str:
        widths = [max(len(str(r[i])) for r in [COLUMNS, *self.rows]) for i in range(len(COLUMNS))]
        line = "  ".join("-" * w for w in widths)

        def fmt(row):
            cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(row, widths))]
            return "  ".join(cells).rstrip()

        out = [self.title, line, fmt(COLUMNS), line, *(fmt(r) for r in self.rows), line]
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def fmt_ratio(r) -> str:
    med, lo, hi = r
    return f"{med:.3f}x ({lo:.3f}-{hi:.3f})"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
