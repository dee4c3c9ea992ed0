"""Run the code of a documentation page, and turn a tutorial page into a notebook.

A page is Markdown. Its fenced ```python blocks run in order in one namespace, as the
cells of a notebook would; like Jupyter, a block whose last line is an expression shows its
value: a graph drawing (``_repr_svg_``) or a picture (``_repr_png_``, a matplotlib Figure)
as an image, an ``explain`` table (``_repr_html_``) as a table, anything else as text.
What a block prints is shown too. A ```console block holds ``$ chainrule ...`` command lines
only; each runs through the real command line, and what it prints is shown beneath.
Other blocks (```bash, ```text) are shown and never run.

The site's build (``tools/docs_hooks.py``) puts these outputs under each block; the notebooks
in ``notebooks/`` are made from the same pages by ``to_notebook``, so the two never differ.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = re.compile(r"^```(?P<lang>python|console)[^\n]*\n(?P<code>.*?)^```[ \t]*$",
                   re.M | re.S)
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


class PageError(Exception):
    """A block of a page failed; the message names the page, the line and the error."""


@dataclass
class Output:
    """What one block showed: ("text", str), ("image", file name) or ("html", str) items."""

    items: list[tuple[str, str]] = field(default_factory=list)


def blocks(markdown: str) -> list[tuple[str, str, int]]:
    """(language, code, line number of the code's first line) of every runnable block."""
    return [(m["lang"], m["code"], markdown.count("\n", 0, m.start("code")) + 1)
            for m in BLOCK.finditer(markdown)]


def _display(value, pictures: Path, stem: str) -> tuple[str, str] | None:
    """How a notebook would show ``value``: an image written to ``pictures``, HTML or text."""
    if value is None:
        return None
    svg = getattr(value, "_repr_svg_", None)
    if callable(svg) and svg() is not None:
        (pictures / f"{stem}.svg").write_text(svg(), encoding="utf-8")
        return "image", f"{stem}.svg"
    png = getattr(value, "_repr_png_", None)
    data = png() if callable(png) else None
    if isinstance(data, tuple):  # (data, metadata), as IPython allows
        data = data[0]
    if data is not None:
        # IPython's Image gives its PNG base64-encoded, as Jupyter's messages carry it
        raw = base64.b64decode(data) if isinstance(data, str) else data
        (pictures / f"{stem}.png").write_bytes(raw)
        return "image", f"{stem}.png"
    if type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        value.savefig(pictures / f"{stem}.png", dpi=100)
        return "image", f"{stem}.png"
    html = getattr(value, "_repr_html_", None)
    if callable(html) and html() is not None:
        return "html", html()
    return "text", repr(value)


def _open_pyplot_figures():
    """Figures drawn with pyplot in the block just run, closed once taken: what Jupyter's
    inline backend shows at the end of a cell."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    figures = [pyplot.figure(n) for n in pyplot.get_fignums()]
    pyplot.close("all")
    return figures


def _run_python(code, namespace, where):
    tree = ast.parse(code, filename=where)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, where, "exec"), namespace)
    if last is not None:
        return eval(compile(ast.Expression(last.value), where, "eval"), namespace)
    return None


def _run_console(code, where):
    from chainrule.cli import main

    commands = [line for line in code.splitlines() if line.strip()]
    for line in commands:
        if not line.startswith("$ chainrule "):
            raise PageError(f"{where}: a console block holds '$ chainrule ...' lines only "
                            f"(their output is added when the page is built), not {line!r}")
        if len(commands) > 1:
            print(line)
        status = main(shlex.split(line)[2:])
        if status != 0:
            raise PageError(f"{where}: {line!r} exited with status {status}")


def run_page(markdown: str, name: str, workdir: Path, pictures: Path) -> list[Output]:
    """Run every block of the page ``name`` in ``workdir``; one ``Output`` per block.

    Pictures are written into ``pictures`` as ``<page>-<block>.svg/png``. A failing block
    raises ``PageError`` naming the page and the line, with the error's own message.
    """
    workdir, pictures = Path(workdir), Path(pictures)
    workdir.mkdir(parents=True, exist_ok=True)
    pictures.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    namespace = {"__name__": "__main__"}
    outputs = []
    old_cwd, old_backend = os.getcwd(), os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"  # pyplot draws off-screen, as on a server
    os.chdir(workdir)  # whatever the code writes (runs, pictures) lands in the scratch folder
    try:
        for i, (lang, code, line) in enumerate(blocks(markdown)):
            where = f"{name}:{line}"
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed), \
                        contextlib.redirect_stderr(io.StringIO()):
                    if lang == "python":
                        value = _run_python(code, namespace, where)
                    else:
                        value = _run_console(code, where)
            except PageError:
                raise
            except Exception as e:
                raise PageError(f"{where}: the block failed: {type(e).__name__}: {e}") from e
            output = Output()
            if printed.getvalue().strip():
                output.items.append(("text", printed.getvalue().rstrip()))
            shown = _display(value, pictures, f"{stem}-{i + 1}")
            if shown is not None:
                output.items.append(shown)
            for k, figure in enumerate(_open_pyplot_figures()):
                output.items.append(_display(figure, pictures, f"{stem}-{i + 1}-{k + 1}"))
            outputs.append(output)
    finally:
        os.chdir(old_cwd)
        if old_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old_backend
    return outputs


def with_outputs(markdown: str, outputs: list[Output]) -> str:
    """The page with each block's output placed right beneath it."""
    pieces, end = [], 0
    for m, output in zip(BLOCK.finditer(markdown), outputs):
        pieces.append(markdown[end:m.end()])
        end = m.end()
        for kind, value in output.items:
            if kind == "text":
                pieces.append(f"\n\n```{{ .text .cell-output }}\n{value}\n```")
            elif kind == "image":
                pieces.append(f"\n\n![what the code above draws]({value})")
            else:
                pieces.append(f'\n\n<div class="cell-output" markdown="0">\n{value}\n</div>')
    pieces.append(markdown[end:])
    return "".join(pieces)


def _notebook_links(text: str) -> str:
    """Links to other tutorials point at their notebooks; links elsewhere become plain text
    (they are pages of the site)."""
    def fix(m):
        label, target = m["label"], m["target"]
        if "://" in target:
            return m[0]
        if "/" not in target and target.split("#")[0].endswith(".md"):
            return f"[{label}]({target.split('#')[0][:-3]}.ipynb)"
        return label
    return re.sub(r"(?<!!)\[(?P<label>[^\]]+)\]\((?P<target>[^)\s]+)\)", fix, text)


def to_notebook(markdown: str, source: str):
    """The page as an ``nbformat`` v4 notebook without outputs: prose in Markdown cells,
    python blocks as code cells, console commands as ``%run -m chainrule ...`` cells."""
    import nbformat.v4 as v4

    cells = []

    def prose(text):
        text = _notebook_links(text).strip()
        if text:
            cells.append(v4.new_markdown_cell(text))

    end = 0
    for m in FENCE.finditer(markdown):
        lang, code = m["lang"], m["code"].rstrip("\n")
        if lang not in ("python", "console"):
            continue  # shown-only blocks stay in the prose around them
        prose(markdown[end:m.start()])
        end = m.end()
        if lang == "python":
            cells.append(v4.new_code_cell(code))
        else:
            commands = [line[2:] for line in code.splitlines() if line.startswith("$ ")]
            cells.append(v4.new_code_cell("\n".join(
                f"%run -m {shlex.join(shlex.split(c))}" for c in commands)))
    prose(markdown[end:])
    for i, cell in enumerate(cells):  # stable ids keep regenerated notebooks identical
        cell["id"] = f"cell-{i}"
    notebook = v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.metadata["chainrule"] = {"made_from": source}
    return notebook
