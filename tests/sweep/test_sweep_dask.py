"""Sweeps on real Dask: the embedded LocalCluster, a scheduler and workers started here as
separate processes on 127.0.0.1, a worker killed mid-sweep, a sweep stopped by Ctrl-C and
continued. Small spiral sweeps keep each test within tens of seconds on 2 cores."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason='the sweep tests need Dask: pip install '
                    '"chainrule[sweep]"')

from chainrule import cli  # noqa: E402
from chainrule.sweep import sweep  # noqa: E402

pytestmark = pytest.mark.slow
DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
# Dask's HTTP endpoints run even without a dashboard, on every interface unless told
LOOPBACK_HTTP = ["--dashboard-address", "127.0.0.1:0"]


def rows(out):
    with open(Path(out) / "results.csv") as f:
        return list(csv.DictReader(f))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def spiral_sweep(out, *extra, trials=4, epochs=20):
    return ["sweep", "--dataset", "spiral", "--trials", trials, "--lr", "1e-3:1e-1:log",
            "--reg", "1e-5:1e-2:log", "--hidden", "16,32", "--epochs", epochs,
            "--out", out, "--quiet", *extra]


def test_sweep_on_the_embedded_cluster(tmp_path, capsys, recwarn):
    out = tmp_path / "sweep"
    # Dask's dashboard port held by another program (a notebook's cluster): the sweep's
    # own cluster, which serves no dashboard, neither needs it nor warns about it
    with socket.socket() as dashboard:
        try:
            dashboard.bind(("127.0.0.1", 8787))
            dashboard.listen()
        except OSError:
            pass  # already held
        code = cli.main([str(a) for a in spiral_sweep(out, "--workers", 2, trials=6)])
    assert not [w for w in recwarn if "already in use" in str(w.message)]
    text = capsys.readouterr().out
    assert code == 0, text
    assert "6 of 6 trials (6 ok)" in text and "embedded Dask cluster of 2" in text
    table = rows(out)
    assert [int(r["trial"]) for r in table] == list(range(6))
    assert all(r["status"] == "ok" and 0 <= float(r["val_accuracy"]) <= 1 for r in table)
    summary = json.loads((out / "sweep.json").read_text())
    best = max(table, key=lambda r: float(r["val_accuracy"]))
    assert summary["best"]["val_accuracy"] == pytest.approx(float(best["val_accuracy"]))
    assert f"best: trial {summary['best']['trial']}" in text
    for name in ("model.crk", "summary.json", "history.csv", "checkpoint.crk"):
        assert (out / "best" / name).exists()
        assert (out / "trials" / "0000" / name).exists()
    # trials never looked at a test split; only the best is evaluated (spiral has none)
    assert "test_accuracy" not in json.loads((out / "trials/0000/summary.json").read_text())
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    # rerunning the command trains nothing again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/model.crk")}
    assert cli.main([str(a) for a in spiral_sweep(out, "--workers", 2, trials=6)]) == 0
    assert "nothing left to run" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("trials/*/model.crk")}


def test_digits_best_is_tested_once_and_populations_run(tmp_path):
    out = tmp_path / "digits"
    summary = sweep({"dataset": "digits", "lr": "1e-3:1e-2:log", "hidden": "64",
                     "epochs": 3, "reg": "0,1e-4"}, trials=4, out=out, workers=2,
                    population=4, progress=False, log=lambda line: None)
    assert summary["counts"] == {"ok": 4}
    assert 0.5 < summary["best"]["test_accuracy"] <= 1
    assert all(json.loads((out / f"trials/{i:04d}/trial.json").read_text())["population"] >= 2
               for i in range(4))


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two workers, each its own process, on 127.0.0.1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    logs = open(tmp_path / "cluster.log", "w")
    started = [subprocess.Popen(
        [*DASK, "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard", *LOOPBACK_HTTP], stdout=logs, stderr=logs,
        env=env)]
    workers = []
    for i in range(2):
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", *LOOPBACK_HTTP,
             "--name", f"w{i}"],
            stdout=logs, stderr=logs, env=env))
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:  # both workers in before tests
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for process in workers + started:
            if process.poll() is None:
                process.terminate()
        for process in workers + started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        logs.close()


def test_sweep_on_a_separately_started_cluster(tmp_path, capsys, cluster):
    address, _ = cluster
    out = tmp_path / "sweep"
    code = cli.main([str(a) for a in spiral_sweep(out, "--scheduler", address)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"the Dask cluster at {address} (2 workers at the start)" in text
    assert [r["status"] for r in rows(out)] == ["ok"] * 4


def test_a_killed_worker_loses_no_trial(tmp_path, cluster):
    address, workers = cluster
    out = tmp_path / "sweep"
    # a checkpoint every epoch: a trial is caught half done however fast the machine is
    argv = [sys.executable, "-m", "chainrule",
            *[str(a) for a in spiral_sweep(out, "--scheduler", address,
                                           "--checkpoint-every", 0, trials=6, epochs=150)]]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        # kill a worker while it is in the middle of a trial: a checkpoint is on disk but
        # that trial has not finished
        def a_trial_is_half_done():
            return any((d / "checkpoint.crk").exists() and not (d / "trial.json").exists()
                       for d in out.glob("trials/*"))
        wait_for(a_trial_is_half_done, 120, "a trial under way")
        workers[0].kill()
        workers[0].wait(timeout=10)
        unfinished = len(list(out.glob("trials/*/trial.json")))
        text, _ = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, text
    assert unfinished < 6
    assert [r["status"] for r in rows(out)] == ["ok"] * 6, text
    assert "6 of 6 trials (6 ok)" in text


def test_ctrl_c_stops_cleanly_and_the_same_command_continues(tmp_path):
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "chainrule",
            *[str(a) for a in spiral_sweep(out, "--workers", 2, trials=8, epochs=100)]]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    try:
        wait_for(lambda: len(list(out.glob("trials/*/trial.json"))) >= 2, 120,
                 "two finished trials")
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        text, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, text
    assert "run the same command again to continue" in text
    assert "Traceback" not in text, text
    finished = {p: p.read_text() for p in out.glob("trials/*/trial.json")}
    assert 2 <= len(finished) < 8
    assert json.loads((out / "sweep.json").read_text())["status"] == "stopped"
    statuses = [r["status"] for r in rows(out)]  # results so far, the rest pending
    assert len(statuses) == 8 and set(statuses) <= {"ok", "pending"} and "pending" in statuses
    again = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "8 of 8 trials (8 ok)" in again.stdout
    for path, text in finished.items():  # finished trials were not run again
        assert path.read_text() == text


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    code = cli.main(["sweep", "--dataset", "spiral", "--out", str(tmp_path / "s"),
                     "--scheduler", "127.0.0.1-no-port"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot reach the Dask scheduler at 127.0.0.1-no-port" in err


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text("from chainrule.sweep import sweep\n"
                      "sweep({'dataset': 'spiral', 'epochs': 2}, trials=1, out='s', "
                      "workers=1, progress=False)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert 'under `if __name__ == "__main__":`' in done.stderr.strip().splitlines()[-1]
