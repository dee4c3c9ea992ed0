"""Each hostile file is refused with one clean error, quickly and at a small cost in memory.

Every load runs in a child process whose address space is capped (see ``capped.py``), so a
loader that tried to allocate what the file claims would fail with MemoryError, a raw
traceback, rather than pass. Peak memory is compared with a child that only imports the
library.
"""

import zipfile

import numpy as np
import pytest

from . import bombs
from .capped import baseline_mb, run_capped

LOAD = """
from pathlib import Path
import chainrule as cr
from chainrule.data import cifar10, mnist, read_batch, read_idx
from chainrule.errors import ChainruleError
path = Path({path!r})
start = time.perf_counter()
try:
    value = {call}
    result = {{"error": None}}
except ChainruleError as e:
    result = {{"error": type(e).__name__, "message": str(e)}}
result["load_seconds"] = time.perf_counter() - start
"""


def load_capped(path, call, cap_mb=600):
    outcome = run_capped(LOAD.format(path=str(path), call=call), cap_mb=cap_mb)
    outcome.update(outcome.pop("result"))
    outcome["extra_mb"] = outcome["peak_mb"] - baseline_mb()
    return outcome


def assert_refused(outcome, error, words, extra_mb=40):
    assert outcome["error"] == error, outcome
    assert words in outcome["message"], outcome["message"]
    assert "\n" not in outcome["message"]
    assert outcome["extra_mb"] < extra_mb, outcome
    assert outcome["load_seconds"] < 2.0, outcome  # a guard against hangs, not a benchmark


# ----- checkpoints ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA],
                         ids=["bzip2", "deflate", "lzma"])
def test_compressed_checkpoint_is_refused_before_decompressing(tmp_path, method):
    path = bombs.checkpoint_compressed(tmp_path, megabytes=64, method=method)
    assert path.stat().st_size < 100_000  # deflate compresses zeros at most ~1000:1
    assert_refused(load_capped(path, "cr.load(path)"), "CheckpointError", "compressed entry")


def test_array_referred_to_many_times_is_read_once(tmp_path):
    path = bombs.checkpoint_repeated(tmp_path, megabytes=16, references=15)
    outcome = load_capped(path, "cr.load(path)")
    assert outcome["error"] is None
    assert outcome["extra_mb"] < 3 * 16, outcome  # 15 copies would be 240 MB


@pytest.mark.parametrize("descr, words", [("<f8", "declares shape (1000000000000,)"),
                                          ("|V0", "only bool, integer, float and complex"),
                                          ("|S0", "only bool, integer, float and complex"),
                                          ("|O", "only bool, integer, float and complex")])
def test_npy_header_claiming_what_the_file_lacks(tmp_path, descr, words):
    path = bombs.checkpoint_header_only(tmp_path, descr=descr)
    assert path.stat().st_size < 1000
    assert_refused(load_capped(path, "cr.load(path)"), "CheckpointError", words)


# ----- IDX -------------------------------------------------------------------------------------
def test_gzipped_idx_longer_than_its_header_is_not_decompressed_whole(tmp_path):
    path = bombs.idx_gzip_overflowing(tmp_path, megabytes=256)
    assert path.stat().st_size < 300_000
    assert_refused(load_capped(path, "read_idx(path)"), "DataError", "extra bytes", extra_mb=20)


def test_gzipped_idx_promising_terabytes(tmp_path):
    path = bombs.idx_gzip_promising(tmp_path)
    assert_refused(load_capped(path, "read_idx(path)"), "DataError", "more than a file")


def test_idx_dimensions_whose_product_overflows(tmp_path):
    path = bombs.idx_overflowing_dimensions(tmp_path)
    assert_refused(load_capped(path, "read_idx(path)"), "DataError",
                   "needs 18446744073709551616 data bytes")


def test_idx_with_no_images(tmp_path):
    folder = bombs.mnist_folder(tmp_path / "mnist", images=0)
    assert_refused(load_capped(folder, "mnist(path)"), "DataError", "holds no images")


@pytest.mark.parametrize("label_type", [0x0D, 0x0E], ids=["float32", "float64"])
def test_idx_float_labels_are_refused(tmp_path, label_type):
    folder = bombs.mnist_folder(tmp_path / "mnist", images=10, label_type=label_type)
    assert_refused(load_capped(folder, "mnist(path)"), "DataError", "labels must be integers")


# ----- CIFAR-10 --------------------------------------------------------------------------------
@pytest.mark.parametrize("build, words", [
    (bombs.cifar_zero_stride, "calling numpy.ndarray directly"),
    (bombs.cifar_without_state, "array without data"),
    (bombs.cifar_short_data, "needs 30720000 bytes but the file holds 10"),
], ids=["zero-stride views", "no state", "short data"])
def test_cifar_arrays_come_only_from_bytes_in_the_file(tmp_path, build, words):
    folder = build(tmp_path)
    assert_refused(load_capped(folder, "cifar10(path)"), "DataError", words)


@pytest.mark.parametrize("labels, words", [
    ([2**63] * 4, "labels must lie in 0..9"),
    ([2**64 + 1, 0, 0, 0], "labels must lie in 0..9"),
    ([1.0, 2.0, 3.0, 4.0], "must be integer class labels, found float"),
    ([True, 0, 0, 0], "must be integer class labels, found bool"),
], ids=["2^63", "2^64+1", "floats", "bool"])
def test_cifar_labels_out_of_range_or_not_integers(tmp_path, labels, words):
    folder = bombs.cifar_labels(tmp_path, labels)
    assert_refused(load_capped(folder, "cifar10(path)"), "DataError", words)


def test_cifar_float_label_array_is_refused(tmp_path):
    folder = bombs.cifar_labels(tmp_path, np.arange(4, dtype=np.float64))
    assert_refused(load_capped(folder, "cifar10(path)"), "DataError", "found float64")


# ----- model size ------------------------------------------------------------------------------
CLI = """
import contextlib, io
from chainrule.cli import main
errors = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stderr(errors):
    code = main({argv!r})
result = {{"code": code, "stderr": errors.getvalue(), "seconds": time.perf_counter() - start}}
"""


@pytest.mark.parametrize("hidden", [["3000000"], ["60000", "60000"]])
def test_model_too_large_for_memory_is_refused_before_building_it(tmp_path, hidden):
    argv = ["train", "--hidden", *hidden, "--quiet", "--out", str(tmp_path / "run")]
    outcome = run_capped(CLI.format(argv=argv), cap_mb=600)
    result = outcome["result"]
    assert result["code"] == 2, result
    assert result["stderr"].count("\n") == 1 and "--max-memory" in result["stderr"], result
    assert outcome["peak_mb"] - baseline_mb() < 150, outcome  # the digits data, no model


def test_max_memory_lets_a_run_ask_for_less_or_more(tmp_path):
    argv = ["train", "--hidden", "50", "--max-memory", "1K", "--quiet"]
    result = run_capped(CLI.format(argv=argv))["result"]
    assert result["code"] == 2 and "more than the 1.0 KB allowed" in result["stderr"]
