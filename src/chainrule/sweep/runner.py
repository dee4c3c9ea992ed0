"""``sweep()``: draw the trials, run them on Dask, gather and judge the results.

The driver (this module) runs where the user typed the command; trials run on Dask
workers: by default an embedded ``LocalCluster`` of one single-threaded process per core,
or an existing cluster given by its scheduler's address. Workers load data sets by name
and write each trial's folder themselves, so the folder (``out``) must be one that every
worker sees: local for the embedded cluster, a shared file system for a cluster of
machines. Everything the driver needs to continue lives on disk: the plan in sweep.json,
each trial's outcome in its folder's trial.json, and its checkpoints.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from .._io import atomic_write_text
from ..errors import ChainruleError
from ..experiment import RunConfig
from ..experiment import evaluate as evaluate_run
from .population import population_key, run_population
from .space import KINDS, SearchSpace, SpaceError, _format_value
from .trial import CHECKPOINT_SECONDS, OUTCOME_FIELDS, finished_outcome, run_trial, write_outcome

TRIALS, RESULTS, SUMMARY, PICTURE, BEST = "trials", "results.csv", "sweep.json", "sweep.png", \
    "best"
SEARCHES = ("random", "grid")
# BLAS libraries read these when a worker process starts; one thread per worker process
# lets N workers use N cores without oversubscribing them.
ONE_THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


def _positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ChainruleError(f"--{name} must be a positive integer, got {value!r}")


def plan_trials(space: SearchSpace, trials: int, search: str, seed: int,
                grid_points: int) -> list[dict]:
    """The searched values of every trial: [{option: value}], checked to make valid runs."""
    if search not in SEARCHES:
        raise SpaceError(f"--search {search!r} is not one of {', '.join(SEARCHES)}")
    if search == "grid":
        if grid_points < 2:
            raise SpaceError(f"--grid-points must be at least 2, got {grid_points}")
        draws = space.grid(grid_points)
        draws = draws[:trials] if trials is not None else draws
    else:
        draws = space.random(trials if trials is not None else 20, seed)
    for values in draws:
        space.config(values).resolved()  # raises a one-line error for an invalid trial
    return draws


def sweep(options: dict | None = None, *, trials: int | None = None, search: str = "random",
          grid_points: int = 3, search_seed: int = 0, out="runs/sweep", workers: int | None = None,
          scheduler: str | None = None, population: int = 1, progress: bool | None = None,
          log=None, checkpoint_every: float | None = CHECKPOINT_SECONDS) -> dict:
    """Search ``options`` and return the sweep's summary (what sweep.json holds).

    Args:
        options: {option: value or space} for any option of ``RunConfig``; a space is a
            string ``"a:b:log"``, ``"a:b"`` or ``"v1,v2"`` (or a list of values). Options
            left out keep ``RunConfig``'s defaults.
        trials: how many random trials (default 20); for grid search, at most this many of
            the grid's points (default all).
        search: "random" (trial i drawn from (search_seed, i)) or "grid".
        grid_points: values per range in a grid search.
        search_seed: the seed of the random search (each trial's training seed is the
            ``seed`` option, fixed or searched).
        out: the sweep's folder: trials/NNNN/ (one run folder each), results.csv,
            sweep.json, sweep.png, best/.
        workers: worker processes of the embedded cluster (default: the number of cores).
        scheduler: address of an existing Dask scheduler (``tcp://host:port``) instead.
        population: train up to this many trials that share an architecture at once, as
            one batched network (see ``chainrule.sweep.population``).
        progress: a progress bar over trials (default: when stderr is a terminal); without
            it, one line per finished trial goes to ``log``.
        log: where lines go (default: print to stdout).
        checkpoint_every: seconds between a trial's checkpoints (default 10; a trial
            always checkpoints after its last epoch; None: after every epoch). A trial
            whose worker dies resumes from its last checkpoint, repeating at most this much
            training with the same numbers; for small networks a checkpoint every epoch
            costs more than the epoch itself.
    """
    log = log or (lambda line: print(line, flush=True))
    if trials is not None:
        _positive("trials", trials)
    _positive("population", population)
    if checkpoint_every is not None and not (isinstance(checkpoint_every, int | float)
                                             and 0 <= checkpoint_every < float("inf")):
        raise ChainruleError(f"--checkpoint-every must be a number of seconds >= 0, got "
                             f"{checkpoint_every!r}")
    if workers is not None:
        _positive("workers", workers)
    if workers is not None and scheduler:
        raise ChainruleError("--workers sizes the embedded cluster; with --scheduler the "
                             "cluster's own workers run the trials (leave one out)")
    if out is None:
        raise ChainruleError("a sweep needs --out, the folder its trials and results go to")
    space = SearchSpace.from_options(options or {})
    draws = plan_trials(space, trials, search, search_seed, grid_points)
    out = Path(out)
    plan = {"search": search, "search_seed": search_seed, "grid_points": grid_points,
            "fixed": {k: v for k, v in space.base.to_dict().items()
                      if k not in space.spaces and k != "out"},
            "spaces": space.describe()}
    _check_plan(out, plan)
    started = time.perf_counter()
    # absolute: a worker of a cluster may run in another working directory
    tasks = [{"index": i, "values": values, "dir": str(out.resolve() / TRIALS / f"{i:04d}"),
              "config": {**space.config(values).to_dict(), "out": None},
              "checkpoint_every": checkpoint_every}
             for i, values in enumerate(draws)]
    outcomes = {t["index"]: o for t in tasks if (o := finished_outcome(t["dir"])) is not None}
    where = None  # no cluster is started when every trial has finished
    pending = [t for t in tasks if t["index"] not in outcomes]
    phases, finished = {}, None  # seconds of each stage; the end, when made on the cluster
    if pending and not scheduler:
        start_worker_server()  # a head start: it imports while this process goes on
    _write_summary(out, {"plan": plan, "trials": len(tasks), "status": "running"})
    drawing = _DrawingPreparation()
    try:
        if pending:
            clock = time.perf_counter()
            with dask_client(scheduler, workers, starting=drawing.start) as cluster:
                where = cluster.where
                clock = _lap(phases, "cluster_start", clock)
                _run_on_dask(cluster, pending, outcomes, population, len(tasks), progress,
                             log)
                clock = _lap(phases, "trials", clock)
                finished = _finish_on_cluster(cluster, out, space, tasks, outcomes, phases,
                                              drawing)
                _lap(phases, "results", clock)
    except KeyboardInterrupt:  # what finished so far, on disk before the sweep stops
        _write_results(out, results_rows(tasks, outcomes, space), space)
        _write_summary(out, {"plan": plan, "trials": len(tasks), "finished": len(outcomes),
                             "status": "stopped"})
        raise
    finally:
        drawing.wait()  # an import is not left half done when the sweep stops
    rows = results_rows(tasks, outcomes, space)
    if finished is None:  # nothing ran: the table and picture of the trials on disk
        _write_results(out, rows, space)
    summary = _finish(out, space, tasks, outcomes, rows, plan, where, population,
                      time.perf_counter() - started, phases, finished)
    return summary


def _lap(phases, name, since):
    """Record the seconds since ``since`` as ``phases[name]``; returns the time now."""
    now = time.perf_counter()
    phases[name] = now - since
    return now


def _best_outcome(outcomes):
    ok = [o for o in outcomes.values() if o["status"] == "ok"]
    return max(ok, key=lambda o: (o["val_accuracy"], -o["index"])) if ok else None


def _finish_on_cluster(cluster, out, space, tasks, outcomes, phases, drawing):
    """The sweep's end, which no more workers make shorter, overlapped: the best trial's
    one test evaluation runs on a worker (which has the data set loaded) and the cluster
    stops in the background as soon as it is done, while this process writes results.csv,
    draws sweep.png and copies best/. Returns (test evaluation or None, picture or None)."""
    best = _best_outcome(outcomes)
    evaluation = (cluster.client.submit(evaluate_run, tasks[best["index"]]["dir"],
                                        pure=False) if best is not None else None)
    stopped = cluster.stop_after(evaluation, phases)
    rows = results_rows(tasks, outcomes, space)
    _write_results(out, rows, space)
    drawing.wait()
    picture = _draw(out, rows, space, None if best is None else best["index"])
    if best is not None:
        _copy_best(Path(tasks[best["index"]]["dir"]), out / BEST)
    evaluated = stopped.result()  # the evaluation's result, or its error raised here
    return (evaluated.get("test") if evaluated is not None else None), picture


# ----- where the trials run -----------------------------------------------------------------
class Cluster:
    """Where a sweep's trials run: ``client`` (a ``distributed.Client``), ``where`` (a
    phrase for the user), ``workers`` (how many at the start). ``stop()`` closes the client
    and, for an embedded cluster, the cluster; it may be called from any thread and more
    than once (a second call waits for the first)."""

    def __init__(self, client, where, workers, local_cluster=None):
        self.client, self.where, self.workers = client, where, workers
        self._local_cluster = local_cluster
        self._stopping = threading.Lock()
        self._stopped = False

    def stop(self, phases=None):
        """Close the client and the embedded cluster; ``phases["cluster_stop"]``: seconds."""
        with self._stopping:
            if self._stopped:
                return
            self._stopped = True
            clock = time.perf_counter()
            try:
                if self.client is not None:
                    self.client.close()
            finally:
                if self._local_cluster is not None:
                    self._local_cluster.close()
                if phases is not None:  # before the lock is let go: a waiting stop()
                    _lap(phases, "cluster_stop", clock)  # returns after it

    def __iter__(self):  # with dask_client() as (client, where): ...
        return iter((self.client, self.where))

    def stop_after(self, future, phases=None) -> concurrent.futures.Future:
        """In a thread: wait for the Dask ``future`` (or None), then ``stop()``. Returns a
        future of ``future``'s result (or error), done once the cluster has stopped;
        ``phases["cluster_stop"]``: the stop's seconds."""
        done = concurrent.futures.Future()

        def wait_then_stop():
            try:
                try:
                    result = future.result() if future is not None else None
                finally:
                    self.stop(phases)
            except BaseException as e:  # raised again by done.result() in the caller
                done.set_exception(e)
            else:
                done.set_result(result)

        _start_thread(wait_then_stop, "stop the Dask cluster")
        return done


@contextlib.contextmanager
def dask_client(scheduler=None, workers=None, starting=None):
    """A ``Cluster`` (its Dask client, and a phrase saying where it runs): an embedded
    LocalCluster (started and stopped here) or the cluster whose scheduler is at
    ``scheduler``. ``starting``: called once Dask is imported, as the cluster starts (to
    begin work that overlaps the wait for its workers)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ChainruleError('chainrule sweep runs on Dask; install it with: '
                             'pip install "chainrule[sweep]"') from None
    if starting is not None:
        starting()
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ChainruleError(f"cannot reach the Dask scheduler at {scheduler} ({e}); start "
                                 "one with `dask scheduler`, or leave out --scheduler") from None
        cluster = Cluster(client, None, 0)
        try:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise ChainruleError(f"the Dask scheduler at {scheduler} has no workers; "
                                     f"start some with `dask worker {scheduler}`") from None
            count = cluster.workers = len(client.scheduler_info()["workers"])
            cluster.where = (f"the Dask cluster at {scheduler} ({count} worker"
                             f"{'s' if count != 1 else ''} at the start)")
            yield cluster
        finally:
            cluster.stop()
        return
    import dask

    count = workers or os.cpu_count() or 1
    # the start method is read again whenever a worker process is restarted
    with (dask.config.set({"distributed.worker.multiprocessing-method": start_worker_server(),
                           **QUIETER_CLUSTER}),
          _quiet_dask_logs()):
        try:
            with _workers_ignore_ctrl_c():
                # No dashboard; the scheduler's HTTP endpoints still run, and would take
                # Dask's dashboard port 8787 (warning when a notebook's cluster holds it):
                # any free port on the loopback instead.
                local = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None,
                                     scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                     silence_logs=logging.CRITICAL, env=ONE_THREAD_ENV)
        except RuntimeError as e:  # most often: a script without a __main__ guard
            raise ChainruleError(
                f"could not start Dask's worker processes ({e}); Dask starts them as new "
                "Python processes that import the calling script again, so from a script "
                'call sweep() under `if __name__ == "__main__":` (and not from code piped '
                "into python)") from None
        cluster = Cluster(None, f"an embedded Dask cluster of {count} worker processes",
                          count, local)
        try:
            cluster.client = Client(local)
            yield cluster
        finally:
            cluster.stop()


@contextlib.contextmanager
def _quiet_dask_logs():
    """Silence the driver's Dask loggers while an embedded cluster lives and stops: its
    teardown is the sweep's own, and Dask reports connections closing under it as INFO
    messages with tracebacks. ``LocalCluster(silence_logs=...)`` covers only its start."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# Dask's housekeeping timers, made less frequent for the embedded cluster. Its scheduler
# and nannies share this process, whose CPU time during the trials is taken from the
# workers when they are as many as the cores: idle, it is 4 ms per second instead of 15.
# The nannies still check their worker's memory once a second; the event loop's blocking
# is looked for every second instead of every 20 ms; the system monitor only feeds the
# dashboard, which the embedded cluster does not serve.
QUIETER_CLUSTER = {"distributed.admin.tick.interval": "1s",
                   "distributed.worker.memory.monitor-interval": "1s",
                   "distributed.admin.system-monitor.interval": "2s"}

# What a worker process imports before its first task: Dask, and the code of the trials.
WORKER_IMPORTS = ["distributed", "chainrule.sweep"]


def start_worker_server() -> str:
    """Start multiprocessing's fork server with ``WORKER_IMPORTS`` imported in it, and
    return the start method for the embedded cluster's worker processes ("forkserver",
    or "spawn" where a system has none).

    A worker forked from that server is ready in a few hundredths of a second; a spawned
    one is a new Python that imports Dask and chainrule first (about a second of CPU),
    time that every sweep waits and that more workers do not shorten. The server starts
    once per process, as soon as a sweep knows it has trials to run, and imports while
    the sweep goes on; it and every worker it forks ignore Ctrl-C (see
    ``_workers_ignore_ctrl_c``) and use one BLAS thread."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    saved = {name: os.environ.get(name) for name in ONE_THREAD_ENV}
    os.environ.update(ONE_THREAD_ENV)  # read by BLAS when the server imports NumPy
    try:
        with _workers_ignore_ctrl_c():
            forkserver.set_forkserver_preload(WORKER_IMPORTS)
            forkserver.ensure_running()
    except OSError:
        return "spawn"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return "forkserver"


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Start worker processes with SIGINT ignored (they inherit it): Ctrl-C reaches the
    whole process group, and the driver, not each worker, should answer it by stopping the
    cluster in order."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _group_tasks(pending, population):
    """Lists of trials to run together: alone, or up to ``population`` that share a key."""
    if population <= 1:
        return [[t] for t in pending]
    groups, alone = {}, []
    for t in pending:
        key = population_key(RunConfig.from_dict(t["config"]))
        if key is None:
            alone.append([t])
        else:
            groups.setdefault(key, []).append(t)
    chunks = [members[i:i + population] for members in groups.values()
              for i in range(0, len(members), population)]
    return chunks + alone


def _run_on_dask(cluster, pending, outcomes, population, total, progress, log):
    from distributed import as_completed

    client = cluster.client
    batch = uuid.uuid4().hex[:8]
    futures = {}
    for group in _group_tasks(pending, population):
        first = group[0]["index"]
        # the longest tasks first: the last ones to start are short, so workers finish
        # together instead of one waiting for another's long last trial
        priority = _expected_cost(group)
        if len(group) == 1:
            future = client.submit(run_trial, group[0], key=f"trial-{first}-{batch}",
                                   pure=False, priority=priority)
        else:
            future = client.submit(run_population, group, key=f"population-{first}-{batch}",
                                   pure=False, priority=priority)
        futures[future] = group
    bar = _progress_bar(progress, total, len(outcomes))
    best = max((o.get("val_accuracy") or 0.0 for o in outcomes.values()
                if o["status"] == "ok"), default=None)
    try:
        for future in as_completed(futures):
            group = futures[future]
            try:
                results = future.result()
            except Exception as e:  # e.g. KilledWorker: its workers died too many times
                results = [_failed(t, f"{type(e).__name__}: {e}") for t in group]
            for outcome in results if isinstance(results, list) else [results]:
                outcomes[outcome["index"]] = outcome
                if outcome["status"] == "ok":
                    best = max(best or 0.0, outcome["val_accuracy"])
                if bar is not None:
                    bar.update(1)
                    if best is not None:
                        bar.set_postfix(best_val=f"{best:.4f}")
                else:
                    log(_trial_line(outcome, len(outcomes), total, best))
    except KeyboardInterrupt:
        client.cancel(list(futures), force=True)
        log(f"\nstopped: {len(outcomes)} of {total} trials finished; run the same command "
            "again to continue (unfinished trials resume from their checkpoints)")
        raise
    finally:
        if bar is not None:
            bar.close()


def _expected_cost(group) -> int:
    """A rough measure of a task's training time, for the order of the queue: epochs
    times the hidden units (times the members, for a population)."""
    config = group[0]["config"]
    hidden = config.get("hidden") or []
    return int(len(group) * (config.get("epochs") or 1) * (1 + sum(hidden)))


def _failed(task, error):
    outcome = {"index": task["index"], "status": "failed", "error": error, "seconds": None}
    write_outcome(task["dir"], outcome)
    return outcome


def _progress_bar(progress, total, done):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="trial", desc="sweep", dynamic_ncols=True)


def _trial_line(outcome, done, total, best):
    text = f"trial {outcome['index']} ({done}/{total}) {outcome['status']}"
    if outcome["status"] == "ok":
        text += f": val_accuracy {outcome['val_accuracy']:.4f}"
    else:
        text += f": {outcome.get('error', '')}"
    return text + (f"; best so far {best:.4f}" if best is not None else "")


# ----- the results ------------------------------------------------------------------------
def results_rows(tasks, outcomes, space) -> list[dict]:
    """One dict per trial: its number, searched values, outcome (status "pending" if none)."""
    rows = []
    for t in tasks:
        outcome = outcomes.get(t["index"], {"status": "pending"})
        row = {"trial": t["index"]}
        row.update({name: v if isinstance(v, float) else
                    _format_value(list(v) if isinstance(v, tuple) else v)
                    for name, v in t["values"].items()})
        row.update({k: outcome.get(k) for k in OUTCOME_FIELDS})
        row["folder"] = f"{TRIALS}/{Path(t['dir']).name}"
        rows.append(row)
    return rows


def _write_results(out, rows, space):
    fields = ["trial", *space.spaces, *OUTCOME_FIELDS, "folder"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_text(out / RESULTS, buffer.getvalue())


def _write_summary(out, summary):
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")


def _check_plan(out, plan):
    """A folder holds one sweep: continuing needs the same spaces, seed and search."""
    path = out / SUMMARY
    if not path.exists():
        return
    try:
        saved = json.loads(path.read_text()).get("plan")
    except ValueError:
        return
    if saved is not None and saved != json.loads(json.dumps(plan)):
        changed = sorted(k for k in plan if saved.get(k) != json.loads(json.dumps(plan[k])))
        raise ChainruleError(f"{out} holds a different sweep ({', '.join(changed)} differ); "
                             "rerun it with its own options to continue it, or choose "
                             "another --out")


def _finish(out, space, tasks, outcomes, rows, plan, where, population, seconds, phases,
            finished=None) -> dict:
    """sweep.json's summary. ``finished``: (the best trial's test evaluation, the picture)
    when ``_finish_on_cluster`` made them (and copied best/), else all made here."""
    counts = {}
    for o in outcomes.values():
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    summary = {"plan": plan, "trials": len(tasks), "finished": len(outcomes),
               "counts": counts, "where": where, "population": population,
               "seconds": round(seconds, 3), "status": "done",
               "phases": {k: round(v, 3) for k, v in phases.items()}}
    best = _best_outcome(outcomes)
    if best is not None:
        task = tasks[best["index"]]
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in task["values"].items()}
        summary["best"] = {"trial": best["index"], "values": values,
                           "val_accuracy": best["val_accuracy"],
                           "train_accuracy": best["train_accuracy"], "folder": str(out / BEST),
                           "config": task["config"]}
        if finished is None:
            _copy_best(Path(task["dir"]), out / BEST)
        test = finished[0] if finished is not None else evaluate_run(out / BEST).get("test")
        if test is not None:  # the one look at the test split, for the chosen trial only
            summary["best"]["test_accuracy"] = test["accuracy"]
        summary["warnings"] = space.border_warnings(values)
    else:
        summary["warnings"] = ["no trial finished training; see the errors in results.csv"]
    summary["picture"] = (finished[1] if finished is not None else
                          _draw(out, rows, space, summary.get("best", {}).get("trial")))
    _write_summary(out, summary)
    return summary


def _copy_best(source: Path, target: Path):
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _draw(out, rows, space, best_index):
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return None
    from .plot import plot_sweep

    return str(plot_sweep(rows, space.spaces, out / PICTURE, best_index))


def _start_thread(target, name) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class _DrawingPreparation:
    """sweep.png's fixed costs (importing matplotlib, a first drawing: about 0.3 s of CPU),
    paid in a thread while the cluster starts: this process mostly waits for the workers
    then, and once the trials run every core is theirs. ``start()`` begins (once; nothing
    without matplotlib), ``wait()`` waits for the end (at once if never started)."""

    def __init__(self):
        self._thread = None

    def start(self):
        import importlib.util

        if self._thread is None and importlib.util.find_spec("matplotlib") is not None:
            self._thread = _start_thread(self._prepare, "prepare sweep.png")

    @staticmethod
    def _prepare():
        from .plot import prepare_drawing

        with contextlib.suppress(Exception):  # drawing sweep.png reports any error itself
            prepare_drawing()

    def wait(self):
        if self._thread is not None:
            self._thread.join()


__all__ = ["sweep", "plan_trials", "dask_client", "KINDS"]
