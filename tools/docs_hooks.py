"""MkDocs hooks: the site is built from the library's own code.

- Every tutorial and how-to page runs when the site is built (``tutorial_pages.run_page``):
  what its code prints and draws is placed beneath each block, and its pictures are files
  of the site. A block that fails stops the build, naming the page and the line.
- The API reference is generated: one page per public module of ``chainrule`` (found by
  walking the package, so moved or new modules follow by themselves), rendered by
  mkdocstrings from the docstrings; a package's page lists every name it exports with a
  link to where that name is documented, so a name without its documentation is a
  missing reference, which fails the strict build.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import tempfile
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).parent))
from griffe_plain_stars import escape_stars  # noqa: E402
from tutorial_pages import PageError, run_page, with_outputs  # noqa: E402

RUN_DIRS = ("tutorials/", "how-to/")
_outputs: dict[str, list] = {}
_scratch: tempfile.TemporaryDirectory | None = None


def public_modules(package="chainrule") -> list[str]:
    """Every importable module of the package whose dotted name has no part starting with _."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def exported_names(module) -> list[str]:
    """The names a package offers: its ``__all__``, else every public name it holds (or
    imports when asked) that is a function, class or submodule."""
    names = getattr(module, "__all__", None)
    if names is None:
        # dir(), not vars(): a package may import some names on first use (PEP 562)
        names = [n for n in dir(module) if not n.startswith("_")
                 and (inspect.isfunction(v := getattr(module, n)) or inspect.isclass(v)
                      or inspect.ismodule(v))]
    return sorted(names, key=str.lower)


def _home(value) -> str | None:
    """Where ``value`` is documented: its defining module and qualified name, if that
    module is chainrule's."""
    if inspect.ismodule(value):
        return value.__name__ if value.__name__.startswith("chainrule") else None
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if module and name and module.startswith("chainrule"):
        return f"{module}.{name}"
    return None


def _summary(value) -> str:
    doc = inspect.cleandoc(vars(value).get("__doc__") or "") if inspect.isclass(value) \
        else inspect.getdoc(value) or ""  # a class's own words, not its base class's
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    first = first if len(first) <= 120 else first[:117] + "..."
    return escape_stars(first).replace("|", "\\|")


def reference_page(name: str) -> str:
    """The Markdown of the reference page of module ``name``."""
    module = importlib.import_module(name)
    if not hasattr(module, "__path__"):  # a module: everything it defines
        return f"::: {name}\n"
    # what the package defines itself is documented here; what it gathers, where it lives
    own = [n for n, v in vars(module).items() if not n.startswith("_")
           and not inspect.ismodule(v) and _home(v) == f"{name}.{n}"]
    lines = [f"::: {name}\n    options:\n      members: {own or 'false'}\n", "## Names\n",
             "| name | what it is |", "| --- | --- |"]
    for exported in exported_names(module):
        value = getattr(module, exported)
        home = _home(value)
        if home is None:  # e.g. a NumPy dtype or a constant
            text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            lines.append(f"| `{exported}` | `{type(value).__name__}`: `{text}` |")
        else:
            lines.append(f"| [`{exported}`][{home}] | {_summary(value)} |")
    return "\n".join(lines) + "\n"


def _reference_nav(modules):
    """Top-level modules as pages; each subpackage as a section of its modules."""
    nav, sections = [], {}
    for m in modules:
        parts = m.split(".")
        package = ".".join(parts[:2])
        is_package = hasattr(importlib.import_module(m), "__path__")
        if len(parts) <= 2 and not (is_package and len(parts) == 2):
            nav.append({m: f"reference/{m}.md"})
            continue
        if package not in sections:
            sections[package] = []
            nav.append({package: sections[package]})
        sections[package].append({m: f"reference/{m}.md"})
    return nav


def on_config(config):
    nav = [item for item in config["nav"] if "API reference" not in item]
    nav.append({"API reference": _reference_nav(public_modules())})
    config["nav"] = nav
    return config


def on_files(files, config):
    global _scratch
    for name in public_modules():
        files.append(File.generated(config, f"reference/{name}.md",
                                    content=reference_page(name)))
    _scratch = tempfile.TemporaryDirectory(prefix="chainrule-docs-")
    scratch = Path(_scratch.name)
    for file in list(files.documentation_pages()):
        if not file.src_uri.startswith(RUN_DIRS) or file.abs_src_path is None:
            continue
        folder = Path(file.src_uri).parent
        pictures = scratch / "pictures" / folder
        try:
            _outputs[file.src_uri] = run_page(Path(file.abs_src_path).read_text("utf-8"),
                                              file.src_uri, scratch / "work" / file.src_uri,
                                              pictures)
        except PageError as e:
            raise PluginError(str(e)) from e
        for picture in sorted(pictures.glob(f"{Path(file.src_uri).stem}-*")):
            files.append(File.generated(config, f"{folder}/{picture.name}",
                                        content=picture.read_bytes()))
    return files


def on_page_markdown(markdown, page, config, files):
    outputs = _outputs.get(page.file.src_uri)
    return markdown if outputs is None else with_outputs(markdown, outputs)


def on_post_build(config):
    global _scratch
    if _scratch is not None:
        _scratch.cleanup()
        _scratch = None
