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


def test_export_example_runs(tmp_path, monkeypatch, capsys):
    import pytest

    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in python_blocks() if "to_onnx" in b]
    exec(compile(block, "README", "exec"), {})
    assert float(capsys.readouterr().out) < 1e-5
    assert (tmp_path / "mlp.onnx").exists() and (tmp_path / "mlp.safetensors").exists()
