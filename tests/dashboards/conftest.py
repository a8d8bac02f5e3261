"""Fixtures of the dashboard tests: synthetic stores, the app on a loopback port, and Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep headless Chromium off the network and out of first-run work.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboards"
# Approach 2 fits in well under a second; the tests that need Approach 3 ask for it.
FAST_APPROACHES = ("approach1", "approach2")


@pytest.fixture
def store(tmp_path):
    from store import open_store

    opened = open_store(f"sqlite:///{tmp_path / 'dashboards.db'}")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory):
    """A store with two synthetic sweeps: `alpha` (3 budgets, one diverged run) and `beta` (2 budgets)."""
    from dashboards.synthetic import fill_synthetic_sweep
    from store import open_store

    path = tmp_path_factory.mktemp("dashboards") / "synthetic.db"
    opened = open_store(f"sqlite:///{path}")
    fill_synthetic_sweep(opened, "alpha", budgets=(1e15, 1e16, 1e17), statuses={3: "diverged"})
    fill_synthetic_sweep(opened, "beta", budgets=(1e16, 1e17), sizes_per_budget=6, seed=1)
    opened.upsert_sweep("empty", {})
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium through Playwright; skipped (failed when CI=true) if it is not installed."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium package to run browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_errors():
    """Return a function that attaches console-error and page-error collection to a page."""

    def attach(page) -> list[str]:
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return errors

    return attach


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
