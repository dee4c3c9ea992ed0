"""Running code in a child process under a memory cap, to show what a hostile file costs.

``run_capped(code)`` runs ``code`` in a fresh Python whose address space is capped
(``resource.setrlimit(RLIMIT_AS)``), so an allocation beyond the cap fails at once
instead of filling the machine. The code sets ``result`` (anything JSON can hold); the
child prints it with its peak resident memory and its running time. A raw traceback, a
crash or a hang fails the test that called it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource", reason="memory caps need the POSIX resource module")

CAP_MB = 1024  # the address space of the child: Python, NumPy and chainrule take ~400 MB

_PRELUDE = """
import json, resource, sys, time
started = time.perf_counter()
result = None
"""
_EPILOGUE = """
print("@@" + json.dumps({
    "result": result,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "seconds": time.perf_counter() - started,
}))
"""


def run_capped(code: str, cap_mb: int = CAP_MB, timeout: float = 120.0, cwd=None) -> dict:
    """Run ``code`` under the cap; returns {"result", "peak_mb", "seconds"}."""
    cap = cap_mb << 20

    def limit():  # runs in the child, before Python starts
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONWARNINGS="error::RuntimeWarning")
    script = _PRELUDE + textwrap.dedent(code) + _EPILOGUE
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, env=env, cwd=cwd)
    assert done.returncode == 0, f"the child failed:\n{done.stderr[-3000:]}"
    line = [x for x in done.stdout.splitlines() if x.startswith("@@")][-1]
    return json.loads(line[2:])


def baseline_mb() -> float:
    """Peak memory of a child that imports chainrule and does nothing else."""
    if not hasattr(baseline_mb, "value"):
        baseline_mb.value = run_capped("import chainrule, chainrule.data, chainrule.cli")[
            "peak_mb"]
    return baseline_mb.value
