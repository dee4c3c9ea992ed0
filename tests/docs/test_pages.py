"""How a documentation page runs: its blocks in order, outputs placed under each, pictures
drawn by the code (so a picture changes when the code that draws it changes)."""

from pathlib import Path

import pytest

from .conftest import ROOT

tutorial_pages = pytest.importorskip("tutorial_pages")

PAGE = ROOT / "docs" / "tutorials" / "01-graphs-and-the-chain-rule.md"


def run(markdown, tmp_path, name="page.md"):
    return tutorial_pages.run_page(markdown, name, tmp_path / "work", tmp_path / "pictures")


def pictures(tmp_path):
    return {p.name: p.read_bytes() for p in sorted((tmp_path / "pictures").iterdir())}


def test_a_tutorial_picture_follows_its_code(tmp_path):
    text = PAGE.read_text()
    run(text, tmp_path / "a", PAGE.name)
    changed = text.replace('z = cr.tensor(-4.0', 'z = cr.tensor(-3.0', 1)
    assert changed != text
    run(changed, tmp_path / "b", PAGE.name)
    before, after = pictures(tmp_path / "a"), pictures(tmp_path / "b")
    assert before.keys() == after.keys() and before
    first = sorted(before)[0]  # the drawing of (x + y) * z
    assert b"-12" in before[first] and b"-9" in after[first]
    assert before[first] != after[first]


def test_outputs_go_under_their_blocks(tmp_path):
    page = ("# t\n\n```python\nprint('hello')\nx = 2\n```\n\ntext\n\n```python\nx * 21\n```\n\n"
            "```bash\nnot run\n```\n\n"
            "```console\n$ chainrule explain \"a * b\" --values a=2,b=3\n```\n")
    outputs = run(page, tmp_path)
    assert [o.items for o in outputs][:2] == [[("text", "hello")], [("text", "42")]]
    assert "pattern" in outputs[2].items[0][1]  # the command's table
    shown = tutorial_pages.with_outputs(page, outputs)
    assert shown.index("cell-output }\nhello\n```") < shown.index("text\n\n```python\nx * 21")
    assert "```bash\nnot run\n```" in shown


def test_graphs_and_tables_show_as_a_notebook_would(tmp_path):
    page = ("```python\nimport chainrule as cr\nx = cr.tensor(2.0, requires_grad=True)\n"
            "y = x * x\ncr.draw_graph(y)\n```\n\n```python\ncr.explain(y)\n```\n")
    graph, table = run(page, tmp_path)
    assert graph.items == [("image", "page-1.svg")]
    assert "<svg" in (tmp_path / "pictures" / "page-1.svg").read_text()
    assert table.items[0][0] == "html" and "<table>" in table.items[0][1]


def test_a_failing_block_names_the_page_and_line(tmp_path):
    page = "# t\n\n```python\nx = 1\n```\n\n```python\n1 / 0\n```\n"
    with pytest.raises(tutorial_pages.PageError, match=r"broken\.md:8: .*ZeroDivisionError"):
        run(page, tmp_path, "broken.md")
    with pytest.raises(tutorial_pages.PageError, match="exited with status 2"):
        run("```console\n$ chainrule train --dataset nope\n```\n", tmp_path)


def test_a_page_runs_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run("```python\nopen('made.txt', 'w').write('x')\n```\n", tmp_path)
    assert (tmp_path / "work" / "made.txt").exists() and not (Path.cwd() / "made.txt").exists()
