"""The notebooks are the tutorials, made from the same pages, kept without outputs, and
they run from top to bottom in a real Jupyter kernel with graphs, tables and plots inline."""

import json

import pytest

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9]*.md"))


def test_there_is_a_notebook_for_every_tutorial():
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in TUTORIALS]
    assert len(TUTORIALS) == 9


def test_the_notebooks_are_made_from_the_tutorials():
    pytest.importorskip("nbformat", reason="the docs extra is not installed")
    import make_notebooks

    for path, text in make_notebooks.expected().items():
        assert path.read_text() == text, f"{path.name} is out of date: run make notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_are_committed(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def output_types(notebook):
    return {key for cell in notebook.cells if cell.cell_type == "code"
            for out in cell.outputs for key in out.get("data", {})}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_runs_top_to_bottom(path, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the docs extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the docs extra is not installed")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}"
    shown = output_types(notebook)
    if path.stem.startswith("01"):  # draw_graph and explain show inline
        assert {"image/svg+xml", "text/html"} <= shown
    if path.stem.startswith(("05", "06", "08")):  # plots show inline
        assert "image/png" in shown
