"""The fuzzer: mutations of real checkpoints, IDX and CIFAR-10 files, each given to the
public loaders and the command line, with every outcome classified.

Run in a child process under a memory cap by ``test_fuzz.py`` (``run(folder, seed)``).
An outcome is "ok" (loaded), "clean" (a ChainruleError, or exit status 2 with one line
on stderr) or a failure: "raw" (any other exception: a raw traceback for a user),
"hang" (longer than ``HANG_SECONDS``), "warning" (NumPy or Python printed a warning)
or "memory" (more allocated during the case than its bound, measured by tracemalloc,
which NumPy reports its arrays to).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import pickle
import shutil
import signal
import sys
import time
import traceback
import tracemalloc
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule.cli import main
from chainrule.data import cifar10, mnist, read_batch, read_idx
from chainrule.errors import ChainruleError
from chainrule.experiment import RunConfig, train
from chainrule.train import Callback

HANG_SECONDS = 20.0
LOADER_BOUND = 16 << 20  # bytes a loader may allocate beyond 8x its file's size
CLI_BOUND = 160 << 20  # a command also trains, evaluates and draws pictures
REPLACEMENTS = (None, -1, 0, 1e30, float("nan"), "x", [], np.zeros((2, 3, 5)))
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 2**15, 2**16 - 1, 2**31 - 1, 2**32 - 1, 2**63 - 1,
               2**64 - 1, 10**12)


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang()


class Fuzzer:
    def __init__(self, folder: Path, seed: int):
        self.folder, self.rng = folder, np.random.default_rng(seed)
        self.counts: Counter = Counter()
        self.seconds: Counter = Counter()
        self.failures: list[str] = []
        self.cases = 0

    # ----- one case ---------------------------------------------------------------------------
    def attempt(self, kind: str, action, bound: int, detail: str = ""):
        """Run ``action`` (returns "ok" or "clean"), classify and record the outcome."""
        self.cases += 1
        began = time.perf_counter()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = action()
                outcome = result if isinstance(result, str) and result == "clean" else "ok"
            except ChainruleError as e:
                outcome = "clean" if "\n" not in str(e) else "raw"
            except Hang:
                outcome = "hang"
            except BaseException as e:  # noqa: BLE001 - what escapes is the finding
                site = traceback.extract_tb(e.__traceback__)[-1]
                outcome = "raw"
                self.failures.append(f"{kind}: {type(e).__name__}: {e!s:.120} at "
                                     f"{Path(site.filename).name}:{site.lineno}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        used = tracemalloc.get_traced_memory()[1] - start
        if outcome in ("ok", "clean") and caught:
            outcome = "warning"
            first = caught[0]
            self.failures.append(f"{kind}: warning {first.message!s:.120} at "
                                 f"{Path(first.filename).name}:{first.lineno}")
        if outcome in ("ok", "clean") and used > bound:
            outcome = "memory"
            self.failures.append(f"{kind}: allocated {used >> 20} MB, bound {bound >> 20} MB")
        if outcome == "hang":
            self.failures.append(f"{kind}: no answer after {HANG_SECONDS} s")
        if outcome not in ("ok", "clean") and detail:
            self.failures[-1] += f" ({detail})"
        self.counts[f"{kind} {outcome}"] += 1
        self.seconds[kind] += time.perf_counter() - began

    def cli(self, argv) -> str:
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        message = errors.getvalue()
        if code == 0:
            return "ok"
        if code == 2 and message.count("\n") == 1 and message.startswith("chainrule: error"):
            return "clean"
        raise AssertionError(f"exit {code} with {message!r:.200}")

    # ----- byte-level mutations ---------------------------------------------------------------
    def mutate_bytes(self, data: bytes) -> bytes:
        rng, data = self.rng, bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            kind = int(rng.integers(7))
            if not data:
                break  # truncated to nothing: an empty file is a case too
            at = int(rng.integers(len(data)))
            if kind == 0:  # flip bits
                data[at] ^= 1 << int(rng.integers(8))
            elif kind == 1:  # an extreme byte
                data[at] = int(rng.choice([0, 0x7F, 0x80, 0xFF]))
            elif kind == 2:  # truncate
                del data[at:]
            elif kind == 3:  # an extreme integer over 2, 4 or 8 bytes, either byte order
                width = int(rng.choice([2, 4, 8]))
                value = int(rng.choice(INTERESTING)) % (1 << (8 * width))
                order = "little" if rng.integers(2) else "big"
                data[at:at + width] = value.to_bytes(width, order)
            elif kind == 4:  # delete a slice
                del data[at:at + int(rng.integers(1, 64))]
            elif kind == 5:  # repeat a slice
                piece = data[at:at + int(rng.integers(1, 256))]
                data[at:at] = piece * int(rng.integers(1, 8))
            else:  # random bytes
                data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 16)), np.uint8))
        return bytes(data)

    # ----- structure-aware mutations ----------------------------------------------------------
    def structural(self, obj):
        """Every value of a nested structure replaced by each of ``REPLACEMENTS``, and
        deleted: (description, mutated copy) pairs."""
        for path in _paths(obj):
            for value in (*REPLACEMENTS, _DELETE):
                mutated = copy.deepcopy(obj)
                parent = _get(mutated, path[:-1])
                if value is _DELETE:
                    if isinstance(parent, tuple):
                        continue
                    del parent[path[-1]]
                elif isinstance(parent, tuple):
                    continue
                else:
                    parent[path[-1]] = value
                yield f"{path} = {value!r:.20}", mutated


_DELETE = object()


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


# ----- the real files ---------------------------------------------------------------------------
class _Stop(Exception):
    pass


class _StopAtSecondEpoch(Callback):
    def on_epoch_begin(self, trainer, epoch):
        if epoch == 2:
            raise _Stop()


def make_run(folder: Path) -> Path:
    """A real run folder: model.crk of a finished run, and the checkpoint of a run
    stopped after epoch 1 of 2 (so that a resume trains)."""
    run = folder / "base"
    argv = ["train", "--dataset", "spiral", "--hidden", "8", "--epochs", "2", "--dropout",
            "0.1", "--lr-schedule", "cosine", "--warmup", "1", "--quiet", "--out", str(run)]
    assert main(argv) == 0
    stopped = folder / "stopped"  # the same run stopped after epoch 1, in a folder of its own
    config = RunConfig(dataset="spiral", hidden=[8], epochs=2, dropout=0.1,
                       lr_schedule="cosine", warmup=1, out=str(stopped))
    try:
        train(config, progress=False, callbacks=[_StopAtSecondEpoch()])
    except _Stop:
        pass
    for name in ("checkpoint.crk", "best.crk", "history.csv"):
        shutil.copyfile(stopped / name, run / name)
    assert cr.load(run / "checkpoint.crk")["epoch"] == 1
    return run


def idx_files(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        files[f"{prefix}-images-idx3-ubyte"] = bytes([0, 0, 8, 3]) + b"".join(
            d.to_bytes(4, "big") for d in images.shape) + images.tobytes()
        files[f"{prefix}-labels-idx1-ubyte"] = bytes([0, 0, 8, 1]) + n.to_bytes(
            4, "big") + labels.tobytes()
    return files


def cifar_batch(n=6, protocol=2, replace=None) -> bytes:
    rng = np.random.default_rng(n)
    batch = {b"batch_label": b"fuzz", b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [b"x.png"] * n}
    batch.update(replace or {})
    return pickle.dumps(batch, protocol=protocol)


def write(path: Path, data: bytes) -> Path:
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    return path


# ----- the campaign -----------------------------------------------------------------------------
def run(folder, seed: int = 0, scale: float = 1.0, structure_share: float = 1.0) -> dict:
    """Every kind of case; ``scale`` multiplies the number of random byte mutations, and
    ``structure_share`` is the (seeded) share of the checkpoint's structural mutations
    tried (all of the model file's are)."""
    folder = Path(folder)
    # Runs as a user without the plotting extra does: pictures (2 s a run) are skipped,
    # everything that reads and checks files is the same.
    sys.modules["matplotlib"] = None
    signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    fuzz = Fuzzer(folder, seed)
    base = make_run(folder)
    n = lambda count: max(1, int(count * scale))  # noqa: E731
    case = folder / "case"

    def fresh_run():
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(base, case)
        return case

    # Checkpoints: bytes through cr.load and both commands; structure through both commands.
    for name, command in (("checkpoint.crk", "resume"), ("model.crk", "evaluate")):
        original = (base / name).read_bytes()
        argv = (["train", "--out", str(case), "--resume", "--quiet"] if command == "resume"
                else ["evaluate", "--checkpoint", str(case)])
        for i in range(n(700)):
            data = fuzz.mutate_bytes(original)
            path = write(folder / "mutated.crk", data)
            fuzz.attempt(f"{name} bytes: cr.load", lambda p=path: cr.load(p),
                         LOADER_BOUND + 8 * len(data))
            if i % 4 == 0:
                write(fresh_run() / name, data)
                fuzz.attempt(f"{name} bytes: {command}", lambda a=argv: fuzz.cli(a),
                             CLI_BOUND + 8 * len(data))
        for detail, mutated in fuzz.structural(cr.load(base / name)):
            if name == "checkpoint.crk" and fuzz.rng.random() > structure_share:
                continue
            try:
                cr.save(mutated, fresh_run() / name)
            except ChainruleError:
                continue
            fuzz.attempt(f"{name} structure: {command}", lambda a=argv: fuzz.cli(a), CLI_BOUND,
                         detail)

    # IDX: bytes and gzip through read_idx, and one mutated file of four through mnist().
    files = idx_files(folder)
    mnist_dir = folder / "mnist"
    for i in range(n(900)):
        name = list(files)[i % 4]
        data = fuzz.mutate_bytes(files[name])
        gz = i % 3 == 0
        data = gzip.compress(data, mtime=0) if gz else data
        suffix = ".gz" if gz else ""
        path = write(folder / f"mutated-idx{suffix}", data)
        fuzz.attempt("idx bytes: read_idx", lambda p=path: read_idx(p) is not None,
                     LOADER_BOUND + 8 * len(data))
        if i % 3 == 1:
            shutil.rmtree(mnist_dir, ignore_errors=True)
            mnist_dir.mkdir()
            for other, content in files.items():
                write(mnist_dir / other, content)
            write(mnist_dir / f"{name}{suffix}", data)
            if suffix:
                (mnist_dir / name).unlink()
            fuzz.attempt("idx bytes: mnist", lambda: mnist(mnist_dir),
                         LOADER_BOUND + 8 * 80_000)
        if i % 30 == 2:
            argv = ["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--epochs",
                    "1", "--hidden", "8", "--quiet", "--out", str(folder / "mnist-run")]
            fuzz.attempt("idx bytes: train", lambda a=argv: fuzz.cli(a), CLI_BOUND)

    # CIFAR-10: bytes of pickles of three protocols, and batches with replaced fields.
    cifar_dir = folder / "cifar-10-batches-py"
    cifar_dir.mkdir()
    batches = {p: cifar_batch(protocol=p) for p in (2, 4, 5)}
    for i in range(n(900)):
        data = fuzz.mutate_bytes(batches[(2, 4, 5)[i % 3]])
        path = write(folder / "mutated-batch", data)
        fuzz.attempt("cifar bytes: read_batch", lambda p=path: read_batch(p),
                     LOADER_BOUND + 8 * len(data))
    fields = {b"data": [np.zeros((6, 3072), np.float32), np.zeros((6, 3071), np.uint8),
                        np.zeros((0, 3072), np.uint8), np.zeros(3072, np.uint8), b"\x00" * 18432,
                        [[0] * 3072] * 6],
              b"labels": [[2**63] * 6, [-1] * 6, [1.5] * 6, ["1"] * 6, [[1]] * 6,
                          np.zeros(6, np.float32), np.full(6, 2**64 - 1, np.uint64), [0] * 5]}
    for key, values in fields.items():
        for value in (*values, *REPLACEMENTS):
            for protocol in (2, 5):
                data = cifar_batch(protocol=protocol, replace={key: value})
                for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                             "data_batch_5", "test_batch"):
                    write(cifar_dir / name, cifar_batch(protocol=protocol))
                write(cifar_dir / "data_batch_3", data)
                fuzz.attempt("cifar structure: cifar10", lambda: cifar10(folder),
                             LOADER_BOUND + 8 * 7 * len(data))
    argv = ["train", "--dataset", "cifar10", "--data-dir", str(folder), "--epochs", "1",
            "--hidden", "8", "--quiet", "--out", str(folder / "cifar-run")]
    fuzz.attempt("cifar structure: train", lambda: fuzz.cli(argv), CLI_BOUND)

    return {"cases": fuzz.cases, "counts": dict(fuzz.counts), "failures": fuzz.failures,
            "seconds_by_kind": {k: round(v, 2) for k, v in fuzz.seconds.items()},
            "peak_traced_mb": tracemalloc.get_traced_memory()[1] / 2**20}


if __name__ == "__main__":  # by hand: python tests/hostile/fuzz.py SEED SCALE REPORT.json
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = run(tmp, int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                     float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
        report["cases_by_kind"] = {}
        report["seconds"] = time.perf_counter() - started
        Path(sys.argv[3] if len(sys.argv) > 3 else "fuzz-report.json").write_text(
            json.dumps(report, indent=1))
