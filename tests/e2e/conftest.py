"""Browser fixtures for the end-to-end tests: Debian's Chromium driven by Playwright, the
built console served by pytest-django's live server, screenshots of failures."""

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("FIREFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CONSOLE_BUILD = ROOT / "frontend" / "dist" / "index.html"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """One Chromium for the e2e tests only: Playwright's sync API keeps an event loop running
    in this thread while it is open, which would break other tests' asyncio.run."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: browser tests need it "
            "(`apt-get install -y chromium`, or `make e2e-deps`). Never `playwright install`.",
            pytrace=False,
        )
    if not CONSOLE_BUILD.exists():
        pytest.fail(
            f"The console is not built ({CONSOLE_BUILD} is missing): run "
            "`cd frontend && npm ci && npm run build` (or `make test`, which does it).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    # While that loop runs, Django refuses ORM calls from this thread (fixture teardown
    # flushes the database); the live server runs in its own thread anyway.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def e2e_settings(settings, live_server):  # type: ignore[no-untyped-def]
    """Links in mails point at the live server; rate limits do not get in a test's way."""
    settings.PUBLIC_URL = live_server.url
    settings.RATE_LIMITS = {"signup": "1000/m", "login": "1000/m", "password_reset": "1000/m"}
    return settings


@pytest.fixture
def new_page(request: pytest.FixtureRequest, browser, live_server, e2e_settings):  # type: ignore[no-untyped-def]
    """Open a page in a fresh browser context (its own cookies: one person each).
    On failure, every open page is saved as a screenshot in test-artifacts/."""
    contexts = []
    pages: list[tuple[str, object]] = []

    def open_page(who: str, base_url: str | None = None) -> object:
        """`base_url`: another server than the live one, e.g. daphne (`web_server`), which
        streams a run's events as they come (the live server, WSGI, sends them at its end)."""
        context = browser.new_context(
            base_url=base_url or live_server.url, viewport={"width": 1360, "height": 900}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        pages.append((who, page))
        return page

    yield open_page

    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for who, page in pages:
            try:
                path = ARTIFACTS / f"{test_name}-{who}.png"
                page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
                print(f"screenshot of {who}'s page: {path}")
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"could not screenshot {who}'s page: {exc}")
    for context in contexts:
        context.close()


NewPage = Callable[..., object]
