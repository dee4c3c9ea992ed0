"""``make docs``: the site builds offline with no warning, every tutorial's code runs
during the build, the pictures are the library's, and every public name has its page."""

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import zlib

import pytest

from .conftest import ROOT

pytest.importorskip("mkdocs", reason="the docs extra is not installed")
pytestmark = pytest.mark.slow

MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file"]
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def build(config, site):
    return subprocess.run([*MKDOCS, str(config), "--site-dir", str(site)], env=ENV, cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    result = build(ROOT / "mkdocs.yml", site)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    return site


def inventory(site):
    """The identifiers the API reference documents (objects.inv, as Sphinx writes it)."""
    raw = (site / "objects.inv").read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines()}


def test_every_tutorial_and_how_to_page_has_its_outputs(site):
    pages = sorted((ROOT / "docs").glob("tutorials/*.md")) + sorted(
        (ROOT / "docs").glob("how-to/*.md"))
    for page in pages:
        html = (site / page.relative_to(ROOT / "docs")).with_suffix(".html").read_text()
        assert 'class="cell-output' in html, page.name
        for picture in re.findall(r'<img alt="what the code above draws" src="([^"]+)"', html):
            assert (site / page.parent.name / picture).stat().st_size > 1000, picture


def test_pictures_are_drawn_by_the_library(site):
    html = (site / "tutorials" / "05-linear-to-mlp.html").read_text()
    pictures = re.findall(r'src="(05-linear-to-mlp-[^"]+\.png)"', html)
    assert len(pictures) >= 4  # linear, 2-layer, 3-layer, the command line's boundary
    graph = (site / "tutorials" / "01-graphs-and-the-chain-rule-3.svg").read_text()
    assert "<svg" in graph and "-12" in graph  # (x + y) * z drawn with its value


def public_names():
    """Every function and class a public module of chainrule defines."""
    import docs_hooks

    for module_name in docs_hooks.public_modules():
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            if getattr(value, "__module__", None) == module_name:
                yield f"{module_name}.{name}"


def test_every_public_name_is_in_the_api_reference(site):
    documented = inventory(site)
    missing = [name for name in public_names() if name not in documented]
    assert not missing, missing
    assert "chainrule.export.onnx.to_onnx" in documented


def test_pages_fetch_nothing_from_the_network(site):
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis" not in text and "cdn.jsdelivr" not in text, page


def test_a_broken_link_or_a_missing_reference_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# broken\n\nSee [a page](no-such-page.md).\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"\nnav:.*", "\nnav:\n  - index.md\n", config, flags=re.S)
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}")
    config = config.replace("tools/", f"{ROOT / 'tools'}/")
    config = config.replace("paths: [src]", f"paths: [{ROOT / 'src'}]")
    config = config.replace("  - stylesheets/extra.css\n", "")
    (tmp_path / "mkdocs.yml").write_text(config)
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and "no-such-page.md" in result.stderr
    (docs / "index.md").write_text("# broken\n\nSee [`nothing`][chainrule.no_such_name].\n")
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and "chainrule.no_such_name" in result.stderr
    shutil.rmtree(tmp_path / "site", ignore_errors=True)
