"""A run's folder is its own: one run at a time (a lock, taken over from a killed run), no
run into an empty --out, leftovers of killed writes removed, diagnostics kept across a
resume, and a Ctrl-C that says what to do next."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chainrule import cli
from chainrule._io import LOCK_NAME, FolderBusyError, folder_lock
from chainrule.diagnostics import DiagnosticsMonitor
from chainrule.experiment import RunConfig
from chainrule.experiment import train as run_experiment
from chainrule.serialization import load
from chainrule.train import CHECKPOINT, Callback


def main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def start_long_run(out: Path, slow_first_epoch=False) -> subprocess.Popen:
    """A real run that takes a while (many epochs of the digits); ``slow_first_epoch``:
    one that holds its folder for seconds before it writes any file there."""
    slow = ["--hidden", "1000", "1000", "--batch-size", "1"] if slow_first_epoch else []
    return subprocess.Popen([sys.executable, "-m", "chainrule", "train", "--dataset", "digits",
                             "--epochs", "500", *slow, "--quiet", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def holder_pid(out: Path):
    try:
        return json.loads((out / LOCK_NAME).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_two_runs_on_one_folder(tmp_path, capsys):
    out = tmp_path / "run"
    # killed before its first epoch ends, it leaves no file but its lock
    first = start_long_run(out, slow_first_epoch=True)
    try:
        wait_for(lambda: holder_pid(out) == first.pid)
        code, _, err = main(capsys, "train", "--dataset", "xor", "--epochs", "2", "--quiet",
                            "--out", out)
        assert code == 2 and err.count("\n") == 1
        assert f"in use by another run (process {first.pid} on" in err
        assert first.poll() is None  # the first run goes on undisturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the killed run's lock is stale: the next run takes it over
    code, _, err = main(capsys, "train", "--dataset", "xor", "--epochs", "2", "--quiet",
                        "--out", out)
    assert code == 0, err
    assert holder_pid(out) == os.getpid()


def test_a_second_thread_cannot_take_the_lock(tmp_path):
    errors = []

    def second():
        try:
            with folder_lock(tmp_path):
                pass
        except FolderBusyError as e:
            errors.append(str(e))

    with folder_lock(tmp_path), folder_lock(tmp_path):  # the same thread may nest it
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"process {os.getpid()}" in errors[0]
    with folder_lock(tmp_path):  # free again
        pass


@pytest.mark.parametrize("out", ["", " "])
def test_empty_out_is_refused(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    code, _, err = main(capsys, "train", "--dataset", "xor", "--epochs", "1", "--out", out)
    assert code == 2 and "--out is empty" in err
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_killed_writes_are_removed_at_the_next_start(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    leftovers = [out / ".model.crk.0123456789ab.tmp", out / ".curves.png.abcdef012345.tmp",
                 out / ".diagnostics.json.00000000ffff.tmp"]
    kept = [out / ".notes.tmp", out / "model.crk.tmp", out / "mine.txt"]
    for path in leftovers + kept:
        path.write_text("x")
    code, _, err = main(capsys, "train", "--dataset", "xor", "--epochs", "1", "--quiet",
                        "--out", out)
    assert code == 0, err
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)


class StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, trainer, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_diagnostics_of_earlier_epochs_survive_a_resume(tmp_path, capsys):
    out = tmp_path / "run"
    config = RunConfig(dataset="xor", epochs=3, hidden=[8], out=str(out))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, progress=False, callbacks=[DiagnosticsMonitor(out), StopAt(3)])
    assert load(out / CHECKPOINT)["epoch"] == 2
    code, _, err = main(capsys, "train", "--out", out, "--resume", "--diagnose", "--quiet")
    assert code == 0, err
    records = json.loads((out / "diagnostics.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [1, 2, 3]


def test_ctrl_c_says_whether_and_how_to_resume(tmp_path):
    parser = cli.make_parser()
    out = tmp_path / "run"
    args = parser.parse_args(["train", "--out", str(out)])
    assert "nothing to resume" in cli._interrupted(args)
    config = RunConfig(dataset="xor", epochs=3, out=str(out))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, progress=False, callbacks=[StopAt(2)])
    assert f"chainrule train --out {out} --resume" in cli._interrupted(args)


def test_resume_without_a_checkpoint_says_how_to_start_again(tmp_path, capsys):
    code, _, err = main(capsys, "train", "--out", tmp_path / "new", "--resume")
    assert code == 2 and "start the run again without --resume" in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_during_a_real_run(tmp_path):
    out = tmp_path / "run"
    run = start_long_run(out)
    wait_for(lambda: (out / CHECKPOINT).exists())
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err.strip().splitlines() == [
        f"chainrule: interrupted; the last finished epoch is saved in {out}: continue with "
        f"`chainrule train --out {out} --resume`"]
