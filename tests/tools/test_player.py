"""The backprop player's page, without a browser: contents, offline, command line."""

from __future__ import annotations

import json
import re

import numpy as np

import chainrule as cr
from chainrule.cli import main
from chainrule.viz.node_check import check_nodes, verdict
from chainrule.viz.player import player_data


def _formula():
    x, y, z = (cr.tensor(np.float64(v), requires_grad=True, name=n)
               for n, v in (("x", -2), ("y", 5), ("z", -4)))
    return (x + y) * z, (x, y, z)


def test_page_is_one_offline_file_with_explains_rows(tmp_path):
    out, _ = _formula()
    page = cr.viz.player(out, tmp_path / "p.html")
    assert (tmp_path / "p.html").read_text() == page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # a namespace name, never fetched
    assert "<link" not in page and "src=" not in page and "@import" not in page
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page,
                                re.S).group(1).replace("<\\/", "</"))
    assert data["table"]["rows"] == cr.explain(out).table()[1:]
    assert [s["title"] for s in data["backward"]] == [r["node"] for r in cr.explain(out).rows]


def test_backward_steps_are_upstream_times_local():
    out, _ = _formula()
    steps = player_data(out)["backward"]
    t1 = next(s for s in steps if s["title"] == "t1 = x + y")
    assert t1["lines"] == [
        {"input": "x", "upstream": "-4", "local": "1", "downstream": "-4"},
        {"input": "y", "upstream": "-4", "local": "1", "downstream": "-4"}]
    assert t1["pattern"] == "distributor"


def test_node_check_agrees_on_correct_rules_and_reads_cs231n_thresholds():
    out, (x, y, z) = _formula()
    ups = {id(s.tensor): s.upstream for s in cr.viz.graph.trace_backward(out)}
    results = check_nodes(out, lambda: (x + y) * z, ups)
    assert len(results) == 5 and all(r["verdict"] == "agree" for r in results.values())
    assert [verdict(e) for e in (1e-9, 1e-5, 1e-3, 0.5)] == [
        "agree", "kinks", "uncomfortable", "wrong"]


def test_why_zero_names_the_relu(tmp_path):
    x = cr.tensor(np.float64(-1.0), requires_grad=True, name="x")
    w = cr.tensor(np.float64(3.0), requires_grad=True, name="w")
    data = player_data(cr.relu(x * w) + w)
    why = {n["name"]: n.get("why_zero") for n in data["nodes"]}
    assert why["x"].startswith("t1 (made from x) received zeros: the ReLU t2 was off")
    assert why["w"] is None


def test_cli_writes_the_player_and_refuses_bad_input(tmp_path, capsys):
    path = tmp_path / "gates.html"
    assert main(["player", "(x + y) * z", "--values", "x=-2,y=5,z=-4",
                 "--out", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out and path.stat().st_size > 1000
    assert main(["player", "__import__('os')", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and err.count("\n") == 1


def test_readme_player_example_runs(tmp_path, monkeypatch):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
                 if "cr.viz.player" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README", "exec"), {})
    assert "0.weight" in (tmp_path / "mlp.html").read_text()


def test_the_check_leaves_other_threads_alone():
    import sys
    import threading

    x = cr.tensor(np.float64(0.3), requires_grad=True, name="x")

    def build():  # a chain long enough for the other thread to run in the middle of it
        t = x
        for _ in range(30):
            t = cr.tanh(t) * 1.5
        return t

    out = build()
    ups = {id(s.tensor): s.upstream for s in cr.viz.graph.trace_backward(out)}
    a = cr.tensor(np.float64(1.5), requires_grad=True)
    seen, stop = set(), threading.Event()

    def other():  # keeps computing while the check nudges and counts
        while not stop.is_set():
            seen.add(float((a * a + a).data))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can
    worker = threading.Thread(target=other)
    worker.start()
    try:
        results = check_nodes(out, build, ups)
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(switch)
    assert len(results) == 61 and all(r["verdict"] == "agree" for r in results.values())
    assert seen == {3.75}
