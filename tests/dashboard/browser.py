"""The console in a real browser: Debian's Chromium driven by Playwright, against the real server.

Test tools cannot download browsers here, so Playwright is pointed at the system Chromium (`make
test` installs it). Browser tests take `page` (a fresh context per test, its base URL the server's),
sign in with `sign_in`, and keep a picture of each page with `screenshot`: they go to
.data/screenshots/, emptied when a test run first takes one, so what is there is the last run's.

The server is another process: rows a browser test relies on must be committed, so such tests use
`pytest.mark.django_db(transaction=True)`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import LiveServer, start_server, stop_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("SLOP_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"

browser_test = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def console_server(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The platform's web server, as `make run` serves it, on the test database."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server = start_server(None, tmp_path_factory.mktemp("console"))
    yield server
    stop_server(server)


@pytest.fixture
def page(
    transactional_db: None, console_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A page of a fresh Chromium. Function-scoped on purpose: Playwright's sync API runs an event
    loop in this thread while it is started, and Django refuses ORM calls from a thread with a running
    loop; so the browser lives only as long as the test (about a second to start), the test's own
    synchronous set-up queries are allowed meanwhile, and every other test runs as before."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(base_url=console_server.url, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(20_000)
        yield context.new_page()
        context.close()
        browser.close()


_cleaned = False


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG of what the page shows now, as .data/screenshots/<name>.png."""
    global _cleaned
    if not _cleaned:
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)
        _cleaned = True
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, username: str, password: str) -> None:
    """Signs in through the sign-in form, as a person would, and waits to leave it."""
    page.goto("/console/login")
    page.get_by_label("Username or e-mail").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/console/login" not in url)
