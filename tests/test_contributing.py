"""CONTRIBUTING.md shows the library's own code and its checks run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BLOCK = re.compile(r"<!-- (source: (?P<path>\S+)|run) -->\n```python\n(?P<code>.*?)```", re.S)


def blocks(kind):
    found = [(m["path"], m["code"]) for m in BLOCK.finditer((ROOT / "CONTRIBUTING.md").read_text())
             if (m["path"] is not None) == (kind == "source")]
    assert found, f"CONTRIBUTING.md has no {kind} blocks"
    return found


@pytest.mark.parametrize("path, code", blocks("source"))
def test_shown_source_is_the_librarys(path, code):
    assert code in (ROOT / path).read_text(), f"CONTRIBUTING.md no longer matches {path}"


@pytest.mark.parametrize("index", range(len(blocks("run"))))
def test_recipe_checks_run(index, capsys):
    _, code = blocks("run")[index]
    exec(compile(code, f"CONTRIBUTING.md run block {index}", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
