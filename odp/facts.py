"""`odp facts STATE`: the landing-page facts from the public API, printed in
the original site's seed format:

    Timeframe: Jan 01, 2002 - Apr 12, 2016
    Stops: 20,622,253
    ...
"""

from __future__ import annotations

import requests


def fetch_facts(base_url: str, state: str) -> dict:
    response = requests.get(f"{base_url.rstrip('/')}/{state}/api/facts/", timeout=30)
    if response.status_code != 200:
        try:
            detail = response.json().get("description", response.text)
        except ValueError:
            detail = response.text
        raise RuntimeError(f"{state} facts: HTTP {response.status_code}: {detail}")
    return response.json()


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
