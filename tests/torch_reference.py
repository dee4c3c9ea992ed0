"""PyTorch's outputs for the parity tests: recorded in the repository, and live where torch is.

A parity test module declares the PyTorch side of each comparison as a *case*: a function of
a few parameters that builds its inputs from a seeded NumPy generator, runs them through torch
in float64 and returns named float64 arrays (values, gradients, second derivatives, parameters
after training, learning rates epoch by epoch). The test computes the same names with
chainrule and checks them against every reference it has:

- always, the outputs PyTorch 2.13 gave when the fixture was recorded
  (``fixtures/torch_reference.npz`` holds the arrays, ``fixtures/torch_reference.json`` maps
  each case and output name to its array), so parity is checked on every machine;
- and, where ``import torch`` works, the same case run live.

A case missing from the fixture fails its test (it never skips). After adding or changing a
case, regenerate the fixture with ``python tests/fixtures/record_torch.py`` (needs torch).

Set the environment variable ``CHAINRULE_TESTS_WITHOUT_TORCH=1`` to check against the recorded
outputs alone, as a machine without torch does, even where torch is installed.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import json
import os
import sys
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
FIXTURE_ARRAYS = TESTS / "fixtures" / "torch_reference.npz"
FIXTURE_INDEX = TESTS / "fixtures" / "torch_reference.json"
WITHOUT_TORCH = "CHAINRULE_TESTS_WITHOUT_TORCH"
REGENERATE = "regenerate it with `python tests/fixtures/record_torch.py` (needs torch)"


def _import_torch():
    """The torch module, or None where it is not installed or hidden by WITHOUT_TORCH."""
    if os.environ.get(WITHOUT_TORCH, "") not in ("", "0"):
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


torch = _import_torch()

# Every declared case, by key: (the function, its keyword arguments).
_CASES: dict[str, tuple] = {}


def case_key(group, name, params):
    """``group/name[a=1, b='x']``: readable, and the same on every run (reprs of plain values)."""
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{group}/{name}[{args}]"


class Cases:
    """The PyTorch side of one test module's comparisons.

    ``@cases.case(seed=[0, 1, 2])`` above ``def softmax(seed)`` declares three cases, one per
    seed; the function returns a dict of arrays and is only called with torch importable.
    ``cases.expected(softmax, seed=1)`` gives the references a test checks against.
    """

    def __init__(self, group):
        self.group = group

    def case(self, **grid):
        """Declare the decorated function once per combination of the values in ``grid``."""
        def declare(fn):
            for values in itertools.product(*grid.values()):
                params = dict(zip(grid, values))
                key = case_key(self.group, fn.__name__, params)
                if key in _CASES:
                    raise ValueError(f"the case {key} is declared twice")
                _CASES[key] = (fn, params)
            return fn
        return declare

    def expected(self, fn, **params):
        """[(source, outputs)]: the recorded outputs, then the live ones where torch is."""
        key = case_key(self.group, fn.__name__, params)
        if key not in _CASES:
            raise KeyError(f"{key} is not among the declared cases; add its parameters to the "
                           f"grid of @case above {fn.__name__}")
        recorded = recorded_outputs()
        assert key in recorded, f"the fixture has no recorded output for {key}; {REGENERATE}"
        references = [(f"PyTorch {recorded_torch_version()} (recorded)", recorded[key])]
        if torch is not None:
            references.append((f"PyTorch {torch.__version__} (live)", run_case(key)))
        return references


def assert_matches(references, actual, rtol, atol):
    """Check chainrule's outputs (a dict of arrays) against each reference from ``expected``."""
    for source, outputs in references:
        assert set(actual) == set(outputs), (
            f"chainrule gave outputs {sorted(actual)}, {source} has {sorted(outputs)}")
        for name, expected in outputs.items():
            ours = np.asarray(actual[name])
            assert ours.shape == expected.shape, (
                f"{name}: chainrule's shape {ours.shape}, {source}'s {expected.shape}")
            np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol,
                                       err_msg=f"{name} against {source}")


def as_arrays(outputs):
    """Torch tensors, floats and lists as float64 NumPy arrays (copies, detached)."""
    arrays = {}
    for name, value in outputs.items():
        if hasattr(value, "detach"):
            value = value.detach().numpy()
        arrays[name] = np.array(value, dtype=np.float64)
    return arrays


def run_case(key):
    """Run one declared case through live torch."""
    if torch is None:
        raise RuntimeError(f"running {key} needs torch")
    fn, params = _CASES[key]
    return as_arrays(fn(**params))


# ----- the modules that declare cases -------------------------------------------------------
def parity_modules():
    """Dotted names (as pytest imports them, tests/ on sys.path) of the modules that declare
    cases: every test file that imports this module."""
    names = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if "from torch_reference import" in path.read_text(encoding="utf-8"):
            names.append(".".join(path.relative_to(TESTS).with_suffix("").parts))
    return names


def declared_cases():
    """Import every module that declares cases; return the keys of all cases, sorted."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    for name in parity_modules():
        importlib.import_module(name)
    return sorted(_CASES)


# ----- the fixture ----------------------------------------------------------------------------
@cache
def _fixture():
    if not FIXTURE_INDEX.exists() or not FIXTURE_ARRAYS.exists():
        raise AssertionError(f"the PyTorch reference fixture is missing; {REGENERATE}")
    index = json.loads(FIXTURE_INDEX.read_text(encoding="utf-8"))
    data = FIXTURE_ARRAYS.read_bytes()
    if hashlib.sha256(data).hexdigest() != index["arrays_sha256"]:
        raise AssertionError(f"{FIXTURE_ARRAYS.name} does not belong to {FIXTURE_INDEX.name}; "
                             f"{REGENERATE}")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        recorded = {key: {name: arrays[member] for name, member in outputs.items()}
                    for key, outputs in index["cases"].items()}
    return index, recorded


def recorded_outputs():
    """{case key: {output name: float64 array}} as recorded."""
    return _fixture()[1]


def recorded_torch_version():
    return _fixture()[0]["torch_version"]


def fixture_files(outputs_by_case, torch_version):
    """The bytes of the .npz and .json files for these outputs.

    The archive is written by hand with a fixed timestamp so that recording the same numbers
    again gives byte-identical files (no spurious diff)."""
    index = {"torch_version": torch_version, "numpy_version": np.__version__, "cases": {}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, (key, outputs) in enumerate(sorted(outputs_by_case.items())):
            index["cases"][key] = {}
            for name, value in outputs.items():
                member = f"c{number:04d}_{name}"
                npy = io.BytesIO()
                np.lib.format.write_array(npy, np.array(value, dtype=np.float64, order="C"),
                                          allow_pickle=False)
                info = zipfile.ZipInfo(member + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, npy.getvalue())
                index["cases"][key][name] = member
    arrays = buffer.getvalue()
    index["arrays_sha256"] = hashlib.sha256(arrays).hexdigest()
    return arrays, (json.dumps(index, indent=1, sort_keys=True) + "\n").encode("utf-8")
