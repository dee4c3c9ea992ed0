"""Write notebooks/NN-name.ipynb from each docs/tutorials/NN-name.md (code, no outputs).

Run by ``make notebooks``; the tests check that the notebooks in the repository are what
this script makes, so a tutorial and its notebook never differ. ``--check`` only compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_pages import to_notebook  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS, NOTEBOOKS = ROOT / "docs" / "tutorials", ROOT / "notebooks"


def expected() -> dict[Path, str]:
    """Each notebook's path and the text it should have."""
    notebooks = {}
    for page in sorted(TUTORIALS.glob("[0-9]*.md")):
        source = page.relative_to(ROOT).as_posix()
        notebook = to_notebook(page.read_text(encoding="utf-8"), source)
        notebooks[NOTEBOOKS / f"{page.stem}.ipynb"] = nbformat.writes(notebook) + "\n"
    return notebooks


def main(argv) -> int:
    stale = []
    for path, text in expected().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if "--check" not in argv:
                path.parent.mkdir(exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if "--check" in argv and stale:
        print("out of date (run make notebooks):", ", ".join(p.name for p in stale))
        return 1
    print(f"{len(stale)} notebook(s) written" if stale else "notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
