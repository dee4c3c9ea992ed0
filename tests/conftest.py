"""Shared fixtures. Headless Chromium for page tests: Debian's chromium and Playwright.

Nothing is downloaded: without the browser or the Playwright package the tests skip and
say why. Screenshots of key states go to ``test-artifacts/`` (or $CHAINRULE_ARTIFACTS).
Every request a page makes is recorded, so tests can prove a page stays offline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("CHAINRULE_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it (apt-get install -y "
                    "chromium) to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip('Playwright is not installed: pip install -e ".[browser]"')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page; ``page.requests`` lists the URL of every request it made."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, name)`` keeps a picture of the page's state as a test artifact."""

    def take(page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
