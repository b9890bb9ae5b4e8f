"""`make screenshots`: full-page screenshots of a running site into
docs/screenshots/, for the README.

    make run &                          # the stack with the sample releases
    .venv/bin/python scripts/screenshots.py

Takes, 1280 px wide: the home page, North Carolina's page, the agency page of
nc's largest agency (the first of the facts' top_agencies; also 390 px wide),
find-a-stop with a search of that agency's last 366 days filled in, and the
operator pages' view of the newest import when an operator token is at hand
(ODP_TOKEN, from the environment or .env, as `odp` reads it). The site is
ODP_URL (default http://localhost:8000). Headless Chromium is Debian's
(/usr/bin/chromium), driven by Playwright; nothing is downloaded.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from dotenv import dotenv_values
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
MAX_HEIGHT = 2400
WIDE, NARROW = 1280, 390
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--hide-scrollbars"]


def setting(name: str, default: str = "") -> str:
    """From the environment, else the checkout's .env (as shared.config reads it)."""
    if os.environ.get(name):
        return os.environ[name]
    env_file = ROOT / ".env"
    values = dotenv_values(env_file) if env_file.exists() else {}
    return values.get(name) or default


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Shooter:
    def __init__(self, browser, base: str):
        self.browser = browser
        self.base = base
        self.taken: list[Path] = []

    def page(self, width: int = WIDE):
        context = self.browser.new_context(viewport={"width": width, "height": 900},
                                           device_scale_factor=1)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda message: message.type == "error"
                and page.problems.append(message.text))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        return page

    def open(self, path: str, width: int = WIDE):
        page = self.page(width)
        response = page.goto(self.base + path, wait_until="load")
        if response is None or response.status != 200:
            status = response.status if response else "no answer"
            raise SystemExit(f"{self.base}{path} answered {status}")
        return page

    def shoot(self, page, name: str) -> None:
        path = OUT / f"{name}.png"
        # The page's top, up to MAX_HEIGHT: an agency page runs to many
        # screens of tables, which would make the repository heavy.
        height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_HEIGHT)
        width = page.viewport_size["width"]
        page.screenshot(path=str(path), full_page=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height})
        self.taken.append(path)
        problems = f"; page problems: {page.problems}" if page.problems else ""
        print(f"  {path.relative_to(ROOT)}  ({page.url}){problems}")
        page.context.close()


def last_day(text: str) -> datetime.date:
    """The facts' end_date: "Dec 27, 2016" as the original site wrote it, or ISO."""
    try:
        return datetime.datetime.strptime(text, "%b %d, %Y").date()
    except ValueError:
        return datetime.date.fromisoformat(text[:10])


def find_a_stop(shooter: Shooter, agency: dict, facts: dict) -> None:
    """The form filled in and sent the way a visitor does it: the agency's
    last 366 days of data (the most the form allows)."""
    end = last_day(str(facts["end_date"]))
    start = end - datetime.timedelta(days=365)
    page = shooter.open("/nc/find-a-stop/")
    page.fill("#agency", agency["name"])
    page.fill("#start_date", start.isoformat())
    page.fill("#end_date", end.isoformat())
    with page.expect_navigation():
        page.click("form.find button[type=submit]")
    rows = page.locator("table[data-table=stops] tbody tr").count()
    if not page.locator("a[rel=next], table[data-table=stops]").count():
        print(f"  warning: find-a-stop found nothing for {agency['name']} "
              f"{start} to {end}")
    else:
        print(f"  find-a-stop: {rows} rows on page 1 for {agency['name']}, {start} to {end}")
    shooter.shoot(page, "find-a-stop")


def operator_import(shooter: Shooter) -> None:
    token = setting("ODP_TOKEN")
    if not token:
        print("  skipped the import page: no operator token (set ODP_TOKEN, or run "
              "`make run` once, which writes one into .env)")
        return
    page = shooter.page()
    response = page.goto(shooter.base + "/admin/", wait_until="load")
    if response is None or response.status == 404 or not page.locator("#token").count():
        print("  skipped the import page: this site has no operator pages (/admin/) yet")
        page.context.close()
        return
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if page.locator("#token").count():
        print("  skipped the import page: the site refused the token in ODP_TOKEN")
        page.context.close()
        return
    page.goto(shooter.base + "/admin/imports/", wait_until="load")
    links = [href for href in page.locator("a[href^='/admin/imports/']").evaluate_all(
        "links => links.map(link => link.getAttribute('href'))")
        if re.fullmatch(r"/admin/imports/\d+/", href)]
    if not links:
        print("  skipped the import page: no import has been made through admin yet")
        page.context.close()
        return
    newest = max(links, key=lambda href: int(href.strip("/").rsplit("/", 1)[1]))
    page.goto(shooter.base + newest, wait_until="load")
    # The page follows the import live (site.js): let it settle on what it shows.
    page.wait_for_timeout(1500)
    shooter.shoot(page, "import")


def main() -> int:
    base = setting("ODP_URL", "http://localhost:8000").rstrip("/")
    try:
        facts = get_json(f"{base}/nc/api/facts/")
    except (urllib.error.URLError, OSError) as error:
        print(f"{base} does not answer ({error}): start the site first (make run)",
              file=sys.stderr)
        return 1
    if not facts.get("top_agencies"):
        print(f"{base} has no nc agency yet: wait for `make run` to say "
              "'the platform is running'", file=sys.stderr)
        return 1
    largest = facts["top_agencies"][0]
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"screenshots of {base} into {OUT.relative_to(ROOT)}/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                             headless=True)
        try:
            shooter = Shooter(browser, base)
            shooter.shoot(shooter.open("/"), "home")
            shooter.shoot(shooter.open("/nc/"), "state")
            agency = f"/nc/agencies/{largest['id']}/"
            shooter.shoot(shooter.open(agency), "agency")
            shooter.shoot(shooter.open(agency, NARROW), "agency-390")
            find_a_stop(shooter, largest, facts)
            operator_import(shooter)
        finally:
            browser.close()
    print(f"{len(shooter.taken)} screenshots taken")
    return 0


if __name__ == "__main__":
    sys.exit(main())
