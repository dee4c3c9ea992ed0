"""Where the time of a compiled (replayed) training step goes, line by line.

    python bench/profile_replay.py medium      # tiny, medium or large (bench/train_step.py)

Takes the step of benchmark 3, compiles it, and runs its generated replay with a clock
read after every statement; prints the statements that took longest (per step) and the
total. The clock reads themselves add a little to each line.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _timing import fix_threads
from train_step import SIZES, compiled_step, make_problem


def statements(source):
    """The replay's top-level statements, each with the indented lines that belong to it."""
    lines = source.splitlines()[1:]
    blocks = []
    for line in lines:
        continuation = line.startswith("        ") or line.startswith("    else")
        if blocks and continuation:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def profile(label, steps=None):
    batch, sizes = SIZES[label][:2]
    x, y, model = make_problem(batch, sizes)
    step = compiled_step(model, x, y)
    step()
    step()
    program = step.compiled.programs()[0]
    header = program.source.splitlines()[0]
    blocks = statements(program.source)
    timed, labels = [header, "    _clock.start()"], []
    for block in blocks:
        timed += block
        if not block[0].strip().startswith("return"):
            timed.append(f"    _clock.lap({len(labels)})")
            labels.append(block[0].strip())
    clock = _Clock(len(labels))
    namespace = dict(program.em.namespace, _clock=clock)
    exec(compile("\n".join(timed) + "\n", "<timed replay>", "exec"), namespace)
    replay = namespace["replay"]
    steps = steps or (2000 if label == "tiny" else 30 if label == "medium" else 3)
    replay(x, y)
    clock.totals[:] = 0
    start = time.perf_counter()
    for _ in range(steps):
        replay(x, y)
    total = (time.perf_counter() - start) / steps
    print(f"{label}: {total * 1e6:,.1f} us per replayed step, {program.kernel_count} NumPy "
          "calls; longest statements:")
    for i in np.argsort(-clock.totals)[:12]:
        share = clock.totals[i] / steps / total
        print(f"  {clock.totals[i] / steps * 1e6:10,.1f} us {share:6.1%}  {labels[i][:80]}")


class _Clock:
    def __init__(self, n):
        self.totals, self.last = np.zeros(n), 0.0

    def start(self):
        self.last = time.perf_counter()

    def lap(self, i):
        now = time.perf_counter()
        self.totals[i] += now - self.last
        self.last = now


if __name__ == "__main__":
    fix_threads()
    for name in sys.argv[1:] or ["tiny", "medium"]:
        profile(name)
