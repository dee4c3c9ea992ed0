"""``chainrule train --record N``: the steps it keeps, and a run it leaves unchanged."""

from __future__ import annotations

import json
import re

from chainrule.cli import main


def _record(path):
    page = path.read_text()
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page,
                                re.S).group(1).replace("<\\/", "</"))
    return data["record"]


def test_record_keeps_the_first_steps_and_changes_nothing(tmp_path, capsys):
    common = ["train", "--dataset", "moons", "--hidden", "6", "--epochs", "2", "--dropout",
              "0.2", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    assert main(common + ["--out", str(tmp_path / "rec"), "--record", "7"]) == 0
    assert "recorded 7 steps: open" in capsys.readouterr().out
    plain = (tmp_path / "plain" / "history.csv").read_text().splitlines()
    recorded = (tmp_path / "rec" / "history.csv").read_text().splitlines()
    strip = [re.sub(r",[0-9.]+$", "", line) for line in plain]  # seconds differ
    assert strip == [re.sub(r",[0-9.]+$", "", line) for line in recorded]
    record = _record(tmp_path / "rec" / "player.html")
    assert [s["step"] for s in record["steps"]] == list(range(1, 8))
    first = record["steps"][0]
    assert [len(L["W"]) for L in first["layers"]] == [6, 2]
    assert len(first["regions"]["classes"]) == 40 * 40
    assert first["loss"] > record["steps"][-1]["loss"] * 0.5


def test_record_without_out_goes_to_the_new_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "moons", "--record", "5", "--quiet"]) == 0
    assert (tmp_path / "runs" / "moons-1" / "player.html").exists()
    assert "runs/moons-1/player.html" in capsys.readouterr().out


def test_record_refuses_what_it_cannot_keep(tmp_path, capsys):
    assert main(["train", "--dataset", "moons", "--hidden", "1000", "1000", "--record",
                 "2000", "--out", str(tmp_path / "r"), "--quiet", "--epochs", "1"]) == 2
    assert "too many to keep" in capsys.readouterr().err
