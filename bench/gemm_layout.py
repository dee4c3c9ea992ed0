"""The two big products of a linear layer's training step, in each weight layout.

    python bench/gemm_layout.py                 # 784-512 (benchmark 3's medium layer)
    python bench/gemm_layout.py 784 100         # benchmark 4's first layer

A weight of shape (out, in) held row-major makes the forward product ``x @ W.T`` a
transposed-operand GEMM and its gradient ``g.T @ x`` an (out, in) output; held as the
transpose of a row-major (in, out) array (``nn.Linear``'s layout), they are the plain
``x @ W`` and ``x.T @ g`` that hand-written NumPy with (in, out) weights runs. Batch 256,
float32, one BLAS thread; candidates interleaved, medians of the rounds.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _timing import fix_threads


def candidates(batch, d_in, d_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, d_in), dtype=np.float32)
    g = rng.standard_normal((batch, d_out), dtype=np.float32)
    row_major = rng.standard_normal((d_out, d_in), dtype=np.float32)  # (out, in) in memory
    in_out = np.ascontiguousarray(row_major.T)  # (in, out) in memory; in_out.T is (out, in)
    scores = np.empty((batch, d_out), np.float32)
    grad_out_in = np.empty((d_out, d_in), np.float32)
    grad_in_out = np.empty((d_in, d_out), np.float32)
    return {
        "forward, (out, in) row-major: x @ W.T": lambda: np.matmul(x, row_major.T, out=scores),
        "forward, (in, out) row-major: x @ W": lambda: np.matmul(x, in_out, out=scores),
        "weight gradient, (out, in): g.T @ x": lambda: np.matmul(g.T, x, out=grad_out_in),
        "weight gradient, (in, out): x.T @ g": lambda: np.matmul(x.T, g, out=grad_in_out),
    }


def main(d_in=784, d_out=512, batch=256, rounds=40, inner=10):
    runs = candidates(batch, d_in, d_out)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            run()
            start = time.process_time()
            for _ in range(inner):
                run()
            times[name].append((time.process_time() - start) / inner)
    print(f"batch {batch}, {d_in} -> {d_out}, float32, CPU time per call (median, q25-q75):")
    for name, values in times.items():
        q25, q50, q75 = np.percentile(values, [25, 50, 75]) * 1e6
        print(f"  {name:40s} {q50:9.1f} us  ({q25:.1f}-{q75:.1f})")


if __name__ == "__main__":
    fix_threads()
    sizes = [int(a) for a in sys.argv[1:3]]
    main(*sizes)
