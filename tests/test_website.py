"""The website in a real browser (Playwright driving Debian's Chromium)
against the gateway under gunicorn, on a release loaded in the test through
the real import and stats refresh: every page loads with no console error and
no failed request; an agency page's data tables say what the API says, with
and without an officer and a year range; its charts are drawn; the agency
search works from the keyboard; find-a-stop refuses a range of more than 366
days and pages through its results; nothing overflows a 390 px wide screen;
and every page carries a Content-Security-Policy that allows nothing inline.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from shared.states import STATES
from tests.support.gateway import ALDER, load_and_refresh, town_release

pytestmark = pytest.mark.e2e

FIR = "Fir Crest Police Department"
FIR_STOPS = 130  # all in 2016: six pages of find-a-stop, an officer of 100+ stops
NARROW = 390


def website_release(writer) -> None:
    """The gateway tests' town (Alder's six stops over two years, officers A1
    and A2) and Fir Crest's 130 stops of 2016, 120 of them by officer F1, so
    the officer ranking lists someone and find-a-stop has pages."""
    town_release(writer)
    for number in range(FIR_STOPS):
        stop_id = 1000 + number
        officer = "F1" if number < 120 else "F2"
        month, day = 1 + number % 11, 1 + number % 28
        writer.stop(stop_id, FIR, f"2016-{month:02}-{day:02} 10:{number % 60:02}:00",
                    purpose=1 + number % 10, action=1 + number % 5, officer_id=officer,
                    driver_arrest=int(number % 7 == 0), engage_force=int(number % 9 == 0))
        race = "B" if number % 2 else "W"
        writer.person(100_000 + number, stop_id, "D", 20 + number % 50,
                      "F" if number % 3 else "M", "H" if number % 5 == 0 else "N", race)
        if number % 3 == 0 or (race == "B" and number % 4 == 1):
            search_id = 200_000 + number
            writer.search(search_id, stop_id, 100_000 + number, search_type=1 + number % 5)
            if number % 2 == 0:
                writer.contraband(300_000 + number, search_id, 100_000 + number, stop_id,
                                  grams="2")


@dataclass
class Site:
    base: str
    ids: dict[str, int]

    def url(self, path: str, params: dict | None = None) -> str:
        return self.base + path + (f"?{urlencode(params)}" if params else "")

    def json(self, path: str, params: dict | None = None):
        with urllib.request.urlopen(self.url(path, params), timeout=30) as response:
            assert response.status == 200
            return json.load(response)


@pytest.fixture
def site(config, engine, release, start_gateway) -> Site:
    load_and_refresh(config, engine, release, website_release)
    base = start_gateway()
    with urllib.request.urlopen(f"{base}/nc/api/agency/", timeout=30) as response:
        ids = {agency["name"]: agency["id"] for agency in json.load(response)}
    return Site(base, ids)


def open_page(browser_page, url: str, width: int = 1280):
    page = browser_page(width=width)
    response = page.goto(url, wait_until="load")
    assert response.status == 200, url
    return page, response


# --- what a page shows ------------------------------------------------------

TABLES_JS = """() => [...document.querySelectorAll("table.data[data-endpoint]")].map(table => ({
    endpoint: table.dataset.endpoint, table: table.dataset.table,
    rows: [...table.tBodies[0].rows].map(row => [...row.cells].map(
        cell => ({text: cell.textContent.trim(), key: cell.dataset.key || null})))}))"""

CHARTS_JS = """() => [...document.querySelectorAll("svg.chart")].map(svg => ({
    title: svg.getAttribute("aria-label"),
    bars: [...svg.querySelectorAll("rect.bar")].filter(
        bar => parseFloat(bar.getAttribute("height")) > 0).length,
    points: svg.querySelectorAll("circle.point").length}))"""


def _rate(value) -> str:
    """A rate cell's first figure: the interval's value, or "-"."""
    return "-" if not value else str(value["value"])


def _figure(text: str) -> str:
    return text.split(" (")[0]


def _expected_rows(endpoint: str, table: str, body) -> list[list[str]]:
    """The cells an agency page's table of `endpoint` should have, from the
    API's JSON body."""
    if endpoint == "disparities":
        return [[group["group"], str(group["stops"]), str(group["searches"]),
                 str(group["hits"]), *(_rate(group[key]) for key in (
                     "search_rate", "search_rate_ratio", "hit_rate", "hit_rate_ratio")),
                 "-" if group["population"] is None else str(group["population"]),
                 _rate(group["stop_rate_ratio"])] for group in body["groups"]]
    if endpoint == "officers":
        return [[officer["officer"], *(str(officer[key]) for key in (
                    "stops", "group_stops", "group_searches", "reference_stops",
                    "reference_searches")),
                 _rate(officer["search_rate_ratio"]), str(officer["p_value"]),
                 str(officer["q_value"]), "yes" if officer["flagged"] else "no"]
                for officer in body["officers"][:25]]
    rows = body if isinstance(body, list) else body[table]
    return [[str(value) for value in row.values()] for row in rows]


def _shown_rows(endpoint: str, rows: list[list[dict]]) -> list[list[str]]:
    """The cells as comparable text: a rate cell's figure without its interval."""
    if endpoint in ("disparities", "officers"):
        return [[_figure(cell["text"]) for cell in row] for row in rows]
    return [[cell["text"] for cell in row] for row in rows]


EMPTY = {"officers": "No officer has that many stops in this range.",
         "disparities": None}


def assert_tables_match_the_api(page, site: Site, api_base: str, params: dict) -> set[str]:
    """Every `table.data[data-endpoint]` of the page equals the API's rows at
    `api_base` + endpoint with the same parameters; the endpoints seen."""
    seen = set()
    for table in page.evaluate(TABLES_JS):
        endpoint = table["endpoint"]
        seen.add(endpoint)
        query = dict(params)
        if endpoint == "officers":
            query = {key: value for key, value in params.items() if key != "officer"}
            query.update(group="black", min_stops="100")
        body = site.json(f"{api_base}{endpoint}/", query)
        expected = _expected_rows(endpoint, table["table"], body)
        shown = _shown_rows(endpoint, table["rows"])
        where = f"{endpoint} {table['table']!r} with {params}"
        if not expected:
            empty = EMPTY.get(endpoint, "No stops in this range.")
            assert shown == [[empty]], where
        else:
            assert shown == expected, where
    return seen


def assert_charts_drawn(page) -> None:
    charts = page.evaluate(CHARTS_JS)
    assert charts, "the page has no chart"
    for chart in charts:
        assert chart["bars"] or chart["points"], f"chart {chart['title']!r} is empty"


# --- the tests --------------------------------------------------------------

def test_every_page_loads_without_a_problem_and_forbids_inline_code(site, browser_page):
    alder = site.ids[ALDER]
    paths = ["/", "/nc/", "/nc/agencies/", "/nc/agencies/?q=wood",
             f"/nc/agencies/{alder}/", f"/nc/agencies/{alder}/?from=2015&to=2015",
             f"/nc/agencies/{alder}/?officer=A1", "/nc/find-a-stop/",
             "/nc/find-a-stop/?" + urlencode({"agency": FIR, "start_date": "2016-01-01",
                                               "end_date": "2016-12-31"}),
             "/about/"]
    for path in paths:
        page, response = open_page(browser_page, site.base + path)
        assert page.problems == [], path
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        assert page.locator("h1").count() == 1, path
        page.context.close()


@pytest.mark.parametrize("params", [{}, {"from": "2015", "to": "2015"}, {"officer": "A1"},
                                    {"officer": "A1", "from": "2016", "to": "2016"}],
                         ids=["whole", "2015", "officer", "officer-2016"])
def test_an_agency_page_shows_the_apis_numbers_and_draws_its_charts(site, browser_page,
                                                                    params):
    alder = site.ids[ALDER]
    page, _ = open_page(browser_page, site.url(f"/nc/agencies/{alder}/", params))
    assert page.problems == []
    assert page.locator("h1").inner_text() == ALDER
    seen = assert_tables_match_the_api(page, site, f"/nc/api/agency/{alder}/", params)
    expected = {*STATES["nc"].aggregates, "disparities"}
    if "officer" in params:
        view = page.locator(".officer-view")
        assert view.is_visible()
        text = view.inner_text()
        assert "officer A1" in text and "only, not of the whole agency" in text
        assert page.locator("input[type=hidden][name=officer]").input_value() == "A1"
        # Back to the whole agency, the range kept.
        href = view.locator("a").get_attribute("href")
        assert "officer" not in href and all(f"{key}={value}" in href
                                             for key, value in params.items()
                                             if key != "officer")
    else:
        assert page.locator(".officer-view").count() == 0
        expected.add("officers")
    assert seen == expected
    for name in ("from", "to"):
        assert page.locator(f"input#{name}").input_value() == params.get(name, "")
    if params != {"officer": "A1", "from": "2016", "to": "2016"}:
        # (A1 searched nobody in 2016: those charts say "No stops in this range".)
        assert_charts_drawn(page)
    else:
        assert page.locator("svg.chart text.empty").count() > 0


def test_the_officer_ranking_and_the_statewide_tables_show_the_apis_numbers(site,
                                                                            browser_page):
    fir = site.ids[FIR]
    page, _ = open_page(browser_page, site.url(f"/nc/agencies/{fir}/"))
    assert page.problems == []
    assert_tables_match_the_api(page, site, f"/nc/api/agency/{fir}/", {})
    officers = page.locator("table[data-endpoint=officers] tbody tr")
    assert officers.count() == 1 and officers.first.locator("th").inner_text() == "F1"
    # An officer's name opens that officer's view of the agency.
    officers.first.locator("a").click()
    page.wait_for_load_state("load")
    assert "officer=F1" in page.url
    assert "officer F1" in page.locator(".officer-view").inner_text()
    assert_tables_match_the_api(page, site, f"/nc/api/agency/{fir}/", {"officer": "F1"})
    assert page.problems == []

    page, _ = open_page(browser_page, site.url("/nc/"))
    seen = assert_tables_match_the_api(page, site, "/nc/api/statewide/", {})
    assert seen == {"stops", "stops_by_purpose_group", "disparities"}
    assert_charts_drawn(page)
    assert page.problems == []


def test_the_agency_search_finds_an_agency_by_part_of_its_name_with_the_keyboard(
        site, browser_page):
    page, _ = open_page(browser_page, site.url("/nc/"))
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "agency-search":
            break
    else:
        pytest.fail("Tab never reached the agency search")
    page.keyboard.type("alder")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/nc/agencies/{site.ids[ALDER]}/")
    assert page.locator("h1").inner_text() == ALDER
    assert page.problems == []

    # Several matches are listed, each a link.
    page, _ = open_page(browser_page, site.url("/nc/agencies/", {"q": "police"}))
    names = page.locator("ul.agencies a").all_inner_texts()
    assert ALDER in names and FIR in names
    assert page.problems == []


def test_find_a_stop_refuses_more_than_366_days_then_pages_through_results(site,
                                                                           browser_page):
    page, _ = open_page(browser_page, site.url("/nc/find-a-stop/"))
    page.fill("#agency", FIR)
    page.fill("#start_date", "2015-01-01")
    page.fill("#end_date", "2016-06-01")
    with page.expect_navigation():
        page.click("button[type=submit]")
    problem = page.locator(".problem")
    assert problem.is_visible()
    assert "end_date" in problem.inner_text() and "366 days" in problem.inner_text()
    assert page.locator("table[data-table=stops]").count() == 0
    assert page.problems == []

    page.fill("#end_date", "2016-12-31")
    page.fill("#start_date", "2016-01-01")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator(".problem").count() == 0
    rows = page.locator("table[data-table=stops] tbody tr")
    assert rows.count() == 25
    first_page = rows.locator("td:first-child").all_inner_texts()
    api = site.json("/nc/api/stops/", {"agency": site.ids[FIR], "start_date": "2016-01-01",
                                        "end_date": "2016-12-31"})
    assert first_page == [str(stop["stop_id"]) for stop in api["results"]]
    assert page.locator("a[rel=prev]").count() == 0
    with page.expect_navigation():
        page.get_by_role("link", name="Next page").click()
    assert "page=2" in page.url
    assert page.locator("table[data-table=stops] caption").inner_text().startswith("Page 2")
    second_page = page.locator("table[data-table=stops] tbody tr td:first-child")
    assert second_page.count() == 25
    assert not set(second_page.all_inner_texts()) & set(first_page)
    assert page.locator("a[rel=prev]").is_visible()
    # The form keeps what was asked.
    assert page.locator("#agency").input_value() == FIR
    assert page.locator("#end_date").input_value() == "2016-12-31"
    assert page.problems == []


def test_nothing_overflows_a_390_px_screen(site, browser_page):
    paths = ["/", "/nc/", f"/nc/agencies/{site.ids[ALDER]}/",
             f"/nc/agencies/{site.ids[FIR]}/", "/nc/agencies/", "/nc/find-a-stop/",
             "/nc/find-a-stop/?" + urlencode({"agency": FIR, "start_date": "2016-01-01",
                                               "end_date": "2016-12-31"}),
             "/about/"]
    for path in paths:
        page, _ = open_page(browser_page, site.base + path, width=NARROW)
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(f"""() => [...document.querySelectorAll("body *")]
            .filter(element => element.getBoundingClientRect().right > {NARROW} + 0.5
                    && !element.closest(".table-wrap"))
            .slice(0, 5).map(element => element.tagName + "." + element.className)""")
        assert width <= NARROW, f"{path} is {width} px wide: {wide}"
        assert page.problems == [], path
        page.context.close()
