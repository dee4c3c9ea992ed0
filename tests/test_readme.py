"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_first_example_prints_the_lecture_gradients(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks()[0], "README", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("-4.0 -4.0 3.0")
    assert (tmp_path / "f.svg").exists()


def test_gradcheck_example_runs():
    namespace = {}
    exec(compile(python_blocks()[0].split("f = ")[0], "README", "exec"), namespace)
    exec(compile(python_blocks()[1], "README", "exec"), namespace)


@pytest.mark.slow
def test_sweep_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason='needs Dask: pip install "chainrule[sweep]"')
    monkeypatch.chdir(tmp_path)
    block = next(b for b in python_blocks() if "chainrule.sweep" in b)
    exec(compile(block, "README", "exec"), {"__name__": "__main__"})
    last = capsys.readouterr().out.strip().splitlines()[-1]  # the best values, accuracy
    assert last.startswith("{'lr'") and 0 < float(last.split()[-1]) <= 1
    assert (tmp_path / "runs/spiral-sweep/results.csv").exists()
    assert (tmp_path / "runs/spiral-sweep/best/model.crk").exists()
