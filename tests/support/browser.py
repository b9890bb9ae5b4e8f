"""A real headless browser for the website's tests: Playwright for Python
driving Debian's Chromium (/usr/bin/chromium; `make test` installs it), never
a browser download.

    page = browser_page()          # a fresh page; console errors and failed
    page.goto(f"{base}/nc/")        # requests are collected on it
    assert page.problems == []
"""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own calls home are refused by this machine's closed network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-quic"]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def watched_page(context):
    """A page that notes console errors, page errors and failed requests in
    `page.problems`."""
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: message.type == "error"
            and page.problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: page.problems.append(
        f"failed: {request.url} {request.failure}"))
    page.on("response", lambda response: response.status >= 400
            and page.problems.append(f"HTTP {response.status}: {response.url}"))
    return page
