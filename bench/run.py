"""Run chainrule's benchmarks and print one table per benchmark (``make bench``).

    python bench/run.py            # everything, a few minutes on 2 cores (micrograd's
                                   # own 100 steps take two of them)
    python bench/run.py --quick    # fewer repeats: a ~15 s smoke test
    python bench/run.py --only mlp # one benchmark (engine, mlp, train, epoch, graph,
                                   # micrograd; or 1-6)

Exits with 1 if a correctness check fails (the implementations disagree, so their times
would not be comparable); missed speed targets are reported in the tables, not as errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Import everything (NumPy, SciPy through chainrule, PyTorch) before the thread pools are
# limited: threadpoolctl only reaches libraries that are already loaded.
import engine_overhead  # noqa: E402
import epoch  # noqa: E402
import graph_scaling  # noqa: E402
import micrograd_demo  # noqa: E402
import mlp_step  # noqa: E402
import train_step  # noqa: E402
from _timing import CheckFailed, fix_threads, header  # noqa: E402

BENCHMARKS = {"engine": engine_overhead, "mlp": mlp_step, "train": train_step, "epoch": epoch,
              "graph": graph_scaling, "micrograd": micrograd_demo}


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = list(BENCHMARKS)
    chosen = []
    for part in only.split(","):
        part = part.strip()
        name = names[int(part) - 1] if part.isdigit() and 1 <= int(part) <= len(names) else part
        if name not in BENCHMARKS:
            raise SystemExit(f"--only: unknown benchmark {part!r}; choose from "
                             + ", ".join(names) + f" (or 1-{len(names)})")
        chosen.append(name)
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--only", metavar="NAME", help="engine, mlp, train, epoch, graph or "
                        "micrograd (comma-separated, or numbers 1-6)")
    args = parser.parse_args(argv)
    names = _selected(args.only)

    fix_threads()
    print(header())
    print(f"mode: {'quick' if args.quick else 'full'}; load average at start "
          f"{_load()}\n", flush=True)
    started, failures, misses = time.perf_counter(), [], 0
    for name in names:
        try:
            table = BENCHMARKS[name].run(quick=args.quick)
        except CheckFailed as e:
            failures.append(f"{name}: {e}")
            print(f"[{name}] CORRECTNESS CHECK FAILED, not timed: {e}\n", flush=True)
            continue
        misses += table.misses
        print(table.render(), "\n", flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s; load average at end {_load()}; "
          f"{misses} target(s) missed; {len(failures)} correctness check(s) failed")
    return 1 if failures else 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
