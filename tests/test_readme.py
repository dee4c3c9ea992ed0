"""The README's Python examples run as written."""

import re
from pathlib import Path

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


def test_compile_example_records_once_and_replays(capsys):
    (block,) = [b for b in python_blocks() if "cr.compile(train_step)" in b]
    exec(compile(block, "README", "exec"), {})
    out = capsys.readouterr().out
    assert "1 recording(s), 199 replay(s)" in out, out
