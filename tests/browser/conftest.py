"""Real Chromium against the real stack: granian web and a Celery worker on the embedded
defaults (SQLite + filesystem broker). Playwright drives Debian's /usr/bin/chromium.

Screenshots go to the test's tmp dir; with UPDATE_SCREENSHOTS=1 also to docs/screenshots/
(so an ordinary `make test` never changes tracked files).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import ROOT, Stack, running_stack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 20_000
GRADING_TIMEOUT_MS = 60_000

# Recorded in every page before any of its scripts run (CDP, so the page's CSP does not apply).
WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return sync_playwright


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack for the browser tests (each test signs up its own learner)."""
    _playwright()
    with running_stack({"BROKER_URL": "filesystem://"}, tmp_path_factory.mktemp("browser")) as s:
        yield s


@pytest.fixture(scope="session")
def browser(stack: Stack) -> Iterator[Any]:
    """Headless Debian Chromium."""
    with _playwright()() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Session:
    """A page plus what it saw: console errors, CSP violations, screenshots."""

    page: Any
    base_url: str
    shots: Path
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> None:
        """Open a portal path and wait for the portal's scripts to have run."""
        self.page.goto(self.base_url + path)
        self.page.wait_for_selector("html[data-portal-ready]", state="attached")

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        """Save a PNG (and into docs/screenshots with UPDATE_SCREENSHOTS=1)."""
        self.page.wait_for_function("document.fonts.status === 'loaded'")
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, SCREENSHOTS / path.name)
        return path

    def sign_up(self, email: str | None = None, password: str = "autograd-rules") -> str:
        """Create an account through the sign-up form; returns the email."""
        email = email or f"learner-{time.monotonic_ns()}@example.test"
        self.go("/signup")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Create account").click()
        self.page.wait_for_url(self.base_url + "/")
        return email

    def wait_graded(self) -> None:
        """Wait until the live result panel shows a finished grading, swapped in by script."""
        done = "#result[data-status=graded]"
        self.page.wait_for_selector(
            f"{done} .score, {done} [data-feedback-hidden], #result[data-status=failed]",
            timeout=GRADING_TIMEOUT_MS,
        )

    def csp_violations(self) -> list[str]:
        """CSP violations the current page reported."""
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found


@pytest.fixture
def session(
    browser: Any, stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Session]:
    """A fresh browser context (no cookies) per test; fails on console errors."""
    width, height = getattr(request, "param", (1280, 900))
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    s = Session(page, stack.base_url, tmp_path)
    page.on("console", lambda m: s.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: s.errors.append(f"uncaught: {e}"))
    try:
        yield s
        assert s.csp_violations() == [], "the page broke its own Content-Security-Policy"
        assert s.errors == [], f"console errors: {s.errors}\n{stack.log_tail()}"
    finally:
        context.close()
