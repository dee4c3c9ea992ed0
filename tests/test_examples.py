"""Every script in examples/ runs and checks its own claims (each one asserts them)."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_the_lecture_examples_are_all_there():
    names = {p.stem for p in EXAMPLES}
    assert {"gates", "sigmoid_neuron", "vectorized_norm", "two_layer_net", "spiral",
            "linear_collapse"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_its_assertions_hold(script, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # anything an example writes lands in a scratch folder
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()  # it shows the learner something


def test_gates_example_prints_the_lecture_numbers(capsys):
    runpy.run_path(str(next(p for p in EXAMPLES if p.stem == "gates")), run_name="__main__")
    out = capsys.readouterr().out
    assert "df/dx = -4, df/dy = -4, df/dz = 3" in out
