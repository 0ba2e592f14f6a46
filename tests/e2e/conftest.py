"""A real Chromium (Debian's) driven by Playwright against the live test server.

Every page a test opens is watched for Content-Security-Policy violations (Chromium reports them
as console errors, and the page as ``securitypolicyviolation`` events): a test that saw one
fails, so a template cannot bring back an inline script or style unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# Runs in every page before its own scripts (injected by the browser, so the CSP does not apply).
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + event.blockedURI +
                " at " + event.sourceFile + ":" + event.lineNumber + " " + (event.sample || ""));
});
"""


def is_csp_violation(text: str) -> bool:
    return "CSP violation" in text or "Content Security Policy" in text


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# Per module, not per session: while Playwright runs, its event loop is live in
# this thread, and tests outside tests/e2e must not run beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # (and their database teardown) make beside it are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page_as(
    browser: Any, live_server: Any, personas: dict[str, Any]
) -> Iterator[Callable[[str | None], Any]]:
    """Open a browser page already logged in as a persona (session cookie set directly), or
    logged out for None."""
    from django.test import Client

    contexts: list[Any] = []
    violations: list[str] = []

    def watch(page: Any) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error" and is_csp_violation(message.text):
                violations.append(f"{page.url}: {message.text}")

        page.on("console", on_console)

    def open_page(persona: str | None) -> Any:
        context = browser.new_context(base_url=live_server.url)
        if persona is not None:
            client = Client()
            client.force_login(personas[persona])
            context.add_cookies(
                [
                    {
                        "name": "sessionid",
                        "value": client.cookies["sessionid"].value,
                        "url": live_server.url,
                    }
                ]
            )
        context.add_init_script(WATCH_CSP)
        context.on("page", watch)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
