"""`odp facts STATE`: the landing-page facts from the public API, printed in
the original site's seed format:

    Timeframe: Jan 01, 2002 - Apr 12, 2016
    Stops: 20,622,253
    ...
"""

from __future__ import annotations

import requests


def public_get(base_url: str, path: str, params: dict | None = None,
               what: str = "") -> requests.Response:
    """A GET of the public API; a RuntimeError with the API's own
    description when it answers anything but 200."""
    response = requests.get(f"{base_url.rstrip('/')}{path}", params=params, timeout=60)
    if response.status_code != 200:
        try:
            detail = response.json().get("description", response.text)
        except ValueError:
            detail = response.text
        raise RuntimeError(f"{what}HTTP {response.status_code}: {detail}")
    return response


def fetch_facts(base_url: str, state: str) -> dict:
    return public_get(base_url, f"/{state}/api/facts/", what=f"{state} facts: ").json()


def format_facts(facts: dict) -> str:
    """The facts as `odp facts` prints them (the original site's seed format)."""
    lines = [
        f"Timeframe: {facts['start_date']} - {facts['end_date']}",
        f"Stops: {facts['total_stops']:,}",
        f"Searches: {facts['total_searches']:,}",
        f"Agencies: {facts['total_agencies']:,}",
        "",
        "Top 5:",
    ]
    lines += [f"Id {agency['id']}: {agency['name']} {agency['stops']:,}"
              for agency in facts["top_agencies"]]
    return "\n".join(lines)
