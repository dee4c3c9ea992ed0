"""The recorded PyTorch references (tests/fixtures/torch_reference.*) the parity tests use.

Without torch these check that the fixture is whole: every declared case recorded, nothing
stale, float64 arrays read without pickle, small. With torch they recompute every case in
memory and check that the recorded numbers are still what PyTorch gives."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch_reference as reference


@pytest.fixture(scope="module")
def declared():
    return reference.declared_cases()


def test_every_parity_module_declares_cases(declared):
    groups = {key.split("/")[0] for key in declared}
    assert {"engine", "nn", "optim"} <= groups
    assert len(declared) > 100


def test_the_fixture_holds_exactly_the_declared_cases(declared):
    recorded = reference.recorded_outputs()
    missing = sorted(set(declared) - set(recorded))
    stale = sorted(set(recorded) - set(declared))
    assert not missing and not stale, (
        f"cases without a recorded output: {missing[:5]}; recorded outputs no case declares: "
        f"{stale[:5]}; {reference.REGENERATE}")


def test_the_fixture_is_small_float64_and_pickle_free():
    assert reference.FIXTURE_ARRAYS.stat().st_size < 256 * 1024
    index = json.loads(reference.FIXTURE_INDEX.read_text(encoding="utf-8"))
    assert index["torch_version"].startswith("2.13")
    with zipfile.ZipFile(reference.FIXTURE_ARRAYS) as archive:
        for member in archive.namelist():
            array = np.load(io.BytesIO(archive.read(member)), allow_pickle=False)
            assert array.dtype == np.float64 and np.isfinite(array).all(), member


def test_the_fixture_rejects_arrays_from_another_recording(tmp_path, monkeypatch):
    # The index carries the archive's hash: a .npz from one run and a .json from another
    # must not be mixed silently.
    arrays, index = reference.fixture_files({"g/case[]": {"value": np.ones(2)}}, "2.13.0")
    other_arrays, _ = reference.fixture_files({"g/case[]": {"value": np.zeros(2)}}, "2.13.0")
    (tmp_path / "r.npz").write_bytes(other_arrays)
    (tmp_path / "r.json").write_bytes(index)
    monkeypatch.setattr(reference, "FIXTURE_ARRAYS", tmp_path / "r.npz")
    monkeypatch.setattr(reference, "FIXTURE_INDEX", tmp_path / "r.json")
    reference._fixture.cache_clear()
    try:
        with pytest.raises(AssertionError, match="does not belong to"):
            reference.recorded_outputs()
        (tmp_path / "r.npz").write_bytes(arrays)
        reference._fixture.cache_clear()
        np.testing.assert_array_equal(reference.recorded_outputs()["g/case[]"]["value"], 1.0)
    finally:
        reference._fixture.cache_clear()


def test_recording_the_same_numbers_gives_the_same_bytes():
    outputs = {"g/b[seed=1]": {"value": np.arange(3.0)}, "g/a[]": {"x": np.eye(2)}}
    assert reference.fixture_files(outputs, "2.13.0") == reference.fixture_files(
        dict(reversed(outputs.items())), "2.13.0")


def test_a_case_missing_from_the_fixture_fails_instead_of_skipping():
    cases = reference.Cases("scratch")

    @cases.case(seed=[0])
    def never_recorded(seed):
        return {"value": np.zeros(1)}

    try:
        with pytest.raises(AssertionError, match="no recorded output for scratch/never_recorded"):
            cases.expected(never_recorded, seed=0)
        with pytest.raises(KeyError, match="not among the declared cases"):
            cases.expected(never_recorded, seed=1)
    finally:
        del reference._CASES["scratch/never_recorded[seed=0]"]


@pytest.mark.skipif(reference.torch is None,
                    reason="recomputing the recorded references needs torch "
                           f"(not installed, or hidden by {reference.WITHOUT_TORCH})")
def test_the_fixture_is_what_torch_gives_now(declared):
    recorded = reference.recorded_outputs()
    for key in declared:
        live = reference.run_case(key)
        assert live.keys() == recorded[key].keys(), key
        for name, value in live.items():
            np.testing.assert_allclose(recorded[key][name], value, rtol=1e-10, atol=1e-11,
                                       err_msg=f"{key} {name}: {reference.REGENERATE}")
