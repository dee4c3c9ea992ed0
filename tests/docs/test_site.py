"""``make docs``: the site builds offline with no warning, every tutorial's code runs
during the build, the pictures are the library's, and every public name has its page."""

import concurrent.futures
import functools
import http.server
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import threading
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
        for host in ("fonts.googleapis", "cdn.jsdelivr", "unpkg.com"):
            assert host not in text, (page, host)


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


@pytest.fixture
def served(site):
    """The site served on 127.0.0.1 (search needs a server); shut down after the test."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_pages_in_a_browser_show_their_pictures_and_find_by_search(site, served, tmp_path):
    """In headless Chromium: a page opened straight from the folder shows every picture and
    the explain table; served on loopback, search finds a tutorial; no request leaves."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    outside = []
    # Playwright's sync API refuses a thread where an asyncio loop counts as running (the
    # notebook tests' Jupyter client can leave one): drive the browser from a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(_browse, sync_api, site, served, tmp_path, outside).result()
    assert not outside, outside


def _browse(sync_api, site, served, tmp_path, outside):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: None if r.url.startswith(
                ("file:", "data:", "blob:", served)) else outside.append(r.url))
            page.goto((site / "tutorials" / "01-graphs-and-the-chain-rule.html").as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                'img[alt="what the code above draws"]',
                "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth])")
            assert len(images) >= 3 and all(width > 100 for _, width in images), images
            table = page.locator(".cell-output table").first
            assert "downstream" in table.inner_text() and "distributor" in table.inner_text()
            page.screenshot(path=str(tmp_path / "tutorial.png"), full_page=True)

            page.goto(f"{served}/index.html")
            search = page.locator(".md-search__input")
            search.click()
            for _ in range(30):  # a query typed before the index is loaded is not run: retype
                search.fill("")
                search.press_sequentially("Jacobian")
                page.wait_for_timeout(2000)
                if page.locator(".md-search-result__item").count():
                    break
            assert "Vectors, matrices and Jacobians" in page.locator(
                ".md-search-result").inner_text()
        finally:
            browser.close()
