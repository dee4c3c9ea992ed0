"""``chainrule train`` with its compiled step (the default) and with ``--no-compile``.

    python bench/train_cli_compare.py            # 5 runs of each, alternating
    python bench/train_cli_compare.py 3 moons    # runs, data set

Trains the same run (``--epochs 30 --batch-size 32``) both ways, alternating, each in a
fresh process with one BLAS thread; compares the training time the run reports
(``seconds`` in summary.json: training and per-epoch validation) and checks that the
losses and accuracies are identical. Not part of ``make bench`` (it trains 10 runs).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMPARED = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "final_loss")


def run(runs=5, dataset="digits"):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    seconds = {"compiled": [], "eager": []}
    summaries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            for name, flags in (("compiled", []), ("eager", ["--no-compile"])):
                out = Path(tmp) / name
                subprocess.run([sys.executable, "-m", "chainrule", "train", "--dataset", dataset,
                                "--epochs", "30", "--batch-size", "32", "--out", str(out),
                                "--quiet", *flags], check=True, env=env,
                               stdout=subprocess.DEVNULL)
                summary = json.loads((out / "summary.json").read_text())
                seconds[name].append(summary["seconds"])
                summaries[name] = {k: summary.get(k) for k in COMPARED}
    median = {name: statistics.median(v) for name, v in seconds.items()}
    for name, values in seconds.items():
        print(f"{name:9s} median {median[name]:.3f} s  runs {[round(v, 3) for v in values]}")
    print(f"compiled / eager: {median['compiled'] / median['eager']:.3f}x; identical results: "
          f"{summaries['compiled'] == summaries['eager']}; load average {os.getloadavg()[0]:.2f}")
    return summaries["compiled"] == summaries["eager"]


if __name__ == "__main__":
    args = sys.argv[1:]
    ok = run(int(args[0]) if args else 5, args[1] if len(args) > 1 else "digits")
    sys.exit(0 if ok else 1)
