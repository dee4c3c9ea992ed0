"""The fuzz test: a seeded campaign of mutated checkpoints, IDX and CIFAR-10 files given to
the public loaders and the command line in a child process under a memory cap.

Zero raw tracebacks, zero NumPy warnings, zero cases allocating beyond their bound, zero
hangs (see ``fuzz.py`` for how each is detected). ``python tests/hostile/fuzz.py SEED
SCALE REPORT.json`` runs a longer campaign by hand.
"""

from pathlib import Path

import pytest

from .capped import baseline_mb, run_capped

HERE = Path(__file__).parent

CAMPAIGN = """
sys.path.insert(0, {here!r})
import fuzz
result = fuzz.run({folder!r}, seed=2026, scale=0.3, structure_share=0.5)
"""


@pytest.mark.slow
def test_fuzz_campaign_gives_only_clean_errors(tmp_path):
    outcome = run_capped(CAMPAIGN.format(here=str(HERE), folder=str(tmp_path)), cap_mb=1536,
                         timeout=900)
    report = outcome["result"]
    assert report["failures"] == []
    assert report["cases"] >= 1500
    kinds = {key.rsplit(" ", 1)[0] for key in report["counts"]}
    for kind in ("checkpoint.crk bytes: cr.load", "checkpoint.crk structure: resume",
                 "model.crk structure: evaluate", "idx bytes: read_idx", "idx bytes: mnist",
                 "cifar bytes: read_batch", "cifar structure: cifar10"):
        assert f"{kind} clean" in report["counts"], kind
    assert any(kind.endswith("train") for kind in kinds)
    # the whole campaign, every file and run included, stays within a small bound
    assert outcome["peak_mb"] - baseline_mb() < 300, outcome["peak_mb"]
