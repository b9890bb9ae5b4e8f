"""The Census Bureau's data API client: American Community Survey 5-year
estimates of every county and place of a state, and of the state itself.

    GET {CENSUS_API_URL}/data/2022/acs/acs5?get=NAME,GEO_ID,B03002_001E,...
        &for=county:*&in=state:37&key=...
    [["NAME", "GEO_ID", "B03002_001E", ..., "state", "county"],
     ["Alder County, North Carolina", "0500000US37063", "331412", ..., "37", "063"], ...]
    GET ...?get=NAME,GEO_ID,...&for=state:37&key=...
    [["NAME", "GEO_ID", ..., "state"], ["North Carolina", "0400000US37", ..., "37"]]

Each geography becomes a profile, {"geoid", "state", "name", "year", "total",
"white", ..., "pop_white", ...} (shared.tables.CENSUS_COUNTS): the state's
variables of docs/DATA-FORMATS.md, and the population counts of the
disparities (POPULATION_VARIABLES, table B03002 whatever the state's table).
Census-designated places (a NAME with "CDP") are left out, an answer without
the state's own row is malformed, and a value the Bureau does not have (null,
or one of its negative annotation codes such as -666666666) counts as 0.

Timeouts, dropped connections, 429 and 5xx answers are retried with an
exponential backoff; any other error answer (a bad key, an unknown variable
or year) fails at once with the API's own words in the CensusError.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from types import MappingProxyType

import requests

from shared.config import Config
from shared.states import STATES

log = logging.getLogger(__name__)

# The ACS 5-year release loaded when neither the request nor CENSUS_YEARS names one.
DEFAULT_YEARS = (2022,)
# Fetched in this order; "state" is the state's own profile (statewide figures).
GEOGRAPHIES = ("county", "place", "state")
PLURALS = {"county": "counties", "place": "places", "state": "state"}

# The population counts of API.md's disparities, for every state: table
# B03002's non-Hispanic races and its Hispanics. A column of several
# variables is their sum (pop_other: native Hawaiian, some other race, two
# or more races).
POPULATION_VARIABLES = MappingProxyType({
    "pop_white": ("B03002_003E",),
    "pop_black": ("B03002_004E",),
    "pop_native_american": ("B03002_005E",),
    "pop_asian": ("B03002_006E",),
    "pop_other": ("B03002_007E", "B03002_008E", "B03002_009E"),
    "pop_hispanic": ("B03002_012E",),
})

RETRIES = 4        # retries after the first try, for transient failures only
BACKOFF = 1.0      # seconds before the first retry, doubling with each
TIMEOUT = 60.0     # seconds to connect, and between bytes of the answer
MAX_RETRY_AFTER = 60.0
EXCERPT = 300      # characters of the API's answer quoted in an error
KEY_PARAM = re.compile(r"([?&]key=)[^&\s'\"]*")


class CensusError(Exception):
    """The profiles could not be fetched; the message says why, for operators."""


def configured_years(config: Config, requested=None) -> list[int]:
    """The years to load: those requested, else CENSUS_YEARS, else DEFAULT_YEARS."""
    if requested:
        years = requested
    elif config.census_years:
        try:
            years = [int(year) for year in config.census_years]
        except ValueError:
            raise CensusError(f"CENSUS_YEARS is not a list of years: "
                              f"{','.join(config.census_years)!r}") from None
    else:
        years = DEFAULT_YEARS
    return sorted({int(year) for year in years})


def endpoint(config: Config, year: int) -> str:
    return f"{config.census_api_url.rstrip('/')}/data/{int(year)}/acs/acs5"


def variables(state: str) -> list[str]:
    """The ACS variables a request for the state asks for, each once: its
    table's (State.census_variables), then the population's."""
    population = [name for names in POPULATION_VARIABLES.values() for name in names]
    return list(dict.fromkeys([*STATES[state].census_variables.values(), *population]))


def request_params(config: Config, state: str, geography: str) -> dict[str, str]:
    fips = STATES[state].fips
    params = {"get": ",".join(["NAME", "GEO_ID", *variables(state)])}
    if geography == "state":
        params["for"] = f"state:{fips}"
    else:
        params["for"] = f"{geography}:*"
        params["in"] = f"state:{fips}"
    if config.census_api_key:
        params["key"] = config.census_api_key
    return params


def fetch_state(session: requests.Session, config: Config, year: int, state: str, *,
                retries: int = RETRIES, backoff: float = BACKOFF, timeout: float = TIMEOUT,
                sleep=time.sleep) -> list[dict]:
    """The profiles of the state's counties and places (CDPs left out), then
    of the state itself."""
    profiles: list[dict] = []
    seen: set[str] = set()
    for geography in GEOGRAPHIES:
        label = f"{state} {PLURALS[geography]} {year}"
        params = request_params(config, state, geography)
        response = _get(session, config, endpoint(config, year), params, label,
                        retries=retries, backoff=backoff, timeout=timeout, sleep=sleep)
        for profile in _parse(response, config, year, state, geography, params, label):
            if profile["geoid"] in seen:
                raise CensusError(f"malformed response for {label}: "
                                  f"GEO_ID {profile['geoid']} appears twice")
            seen.add(profile["geoid"])
            profiles.append(profile)
    return profiles


def fetch_all(config: Config, years, *, session: requests.Session | None = None,
              retries: int = RETRIES, backoff: float = BACKOFF, timeout: float = TIMEOUT,
              sleep=time.sleep) -> list[dict]:
    """Every profile of each state with census variables (State.census_variables),
    for each year; raises CensusError (having returned nothing) when any part
    could not be fetched."""
    own = session is None
    session = session or requests.Session()
    session.headers.setdefault("User-Agent", "open-data-policing census")
    try:
        profiles: list[dict] = []
        for year in years:
            for state in (code for code, known in STATES.items() if known.census_variables):
                fetched = fetch_state(session, config, int(year), state, retries=retries,
                                      backoff=backoff, timeout=timeout, sleep=sleep)
                log.info("%s %s: %d profiles fetched", state, year, len(fetched))
                profiles.extend(fetched)
        return profiles
    finally:
        if own:
            session.close()


def _get(session, config, url, params, label, *, retries, backoff, timeout, sleep):
    tries = retries + 1
    for attempt in range(tries):
        last = attempt == tries - 1
        delay = backoff * 2 ** attempt
        try:
            response = session.get(url, params=params, timeout=timeout)
        except (requests.Timeout, requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError) as error:
            # The URL's long query (and key) says nothing the label does not.
            problem = _redact(re.sub(r"(with url: [^?\s]*)\?\S*", r"\1",
                                     f"{type(error).__name__}: {error}"), config)
            if last:
                raise CensusError(f"the Census API could not be reached for {label} after "
                                  f"{tries} tries: {problem}") from None
            log.warning("%s: %s; retrying in %.2gs", label, problem, delay)
            sleep(delay)
            continue
        except requests.RequestException as error:
            raise CensusError(f"the Census API could not be asked for {label}: "
                              f"{_redact(str(error), config)}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            if last:
                raise CensusError(f"the Census API answered {status} for {label} after "
                                  f"{tries} tries: {_excerpt(response.text, config)}")
            delay = max(delay, _retry_after(response))
            log.warning("%s: the Census API answered %s; retrying in %.2gs", label, status,
                        delay)
            sleep(delay)
            continue
        if status >= 400:
            raise CensusError(f"the Census API answered {status} for {label}: "
                              f"{_excerpt(response.text, config)}")
        if "invalid_key" in (response.url or "").lower():
            # The API sends a bad key to its "Invalid Key" page.
            raise CensusError(f"the Census API rejected the key (CENSUS_API_KEY) for {label}: "
                              f"{_excerpt(response.text, config)}")
        return response
    raise AssertionError("unreachable")


def _retry_after(response) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(response.headers.get("Retry-After", 0))))
    except ValueError:
        return 0.0


def _parse(response, config, year, state, geography, params, label) -> list[dict]:
    def malformed(reason: str) -> CensusError:
        return CensusError(f"malformed response for {label}: {reason}")

    fips = STATES[state].fips
    no_state_row = f"no row for the state itself ({STATES[state].name}, state:{fips})"
    text = response.text
    if not text.strip():
        # The API answers a query that matched nothing with an empty 204.
        empty = f"an empty answer (status {response.status_code})"
        raise malformed(f"{no_state_row}: {empty}" if geography == "state" else empty)
    try:
        table = json.loads(text)
    except ValueError:
        if "invalid key" in text.lower():
            raise CensusError(f"the Census API rejected the key (CENSUS_API_KEY) for {label}: "
                              f"{_excerpt(text, config)}") from None
        raise malformed(f"not JSON: {_excerpt(text, config)}") from None
    if not isinstance(table, list) or not table or not all(
            isinstance(row, list) for row in table):
        raise malformed(f"not a JSON array of arrays: {_excerpt(text, config)}")
    header = table[0]
    if not all(isinstance(name, str) for name in header):
        raise malformed(f"the header row is not a list of names: {header!r:.200}")
    # A state's header ends with "state"; a county's with "state", "county".
    expected = list(dict.fromkeys([*params["get"].split(","), "state", geography]))
    missing = [name for name in expected if name not in header]
    if missing:
        raise malformed(f"the header row lacks {', '.join(missing)}: {header!r:.200}")
    column = {name: header.index(name) for name in expected}
    asked = variables(state)
    profiles = []
    for number, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise malformed(f"row {number} has {len(row)} values for {len(header)} columns")
        name, geoid = row[column["NAME"]], row[column["GEO_ID"]]
        if not isinstance(name, str) or not name or not isinstance(geoid, str) or not geoid:
            raise malformed(f"row {number} has no NAME or GEO_ID: {row!r:.200}")
        if row[column["state"]] != fips:
            raise malformed(f"row {number} ({geoid}) is of state {row[column['state']]!r}, "
                            f"not {fips}")
        if geography == "place" and "CDP" in name:
            continue
        counts = {}
        for variable in asked:
            counts[variable] = _count(row[column[variable]])
            if counts[variable] is None:
                raise malformed(f"row {number} ({geoid}): {variable} is not a number: "
                                f"{row[column[variable]]!r:.50}")
        profile = {"geoid": geoid, "state": state, "name": name, "year": int(year)}
        for field, variable in STATES[state].census_variables.items():
            profile[field] = counts[variable]
        for field, summed in POPULATION_VARIABLES.items():
            profile[field] = sum(counts[variable] for variable in summed)
        profiles.append(profile)
    if not profiles and geography == "county":
        raise malformed("no counties")
    if geography == "state" and len(profiles) != 1:
        raise malformed(no_state_row if not profiles else
                        f"{len(profiles)} rows for the state, not one: "
                        f"{', '.join(profile['geoid'] for profile in profiles)}")
    return profiles


def _count(value) -> int | None:
    """A count, 0 for what the Bureau does not have; None when not a number."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return 0
        try:
            value = int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = round(value)
    if not isinstance(value, int):
        return None
    return max(0, value)


def _redact(text: str, config: Config) -> str:
    """The text without the API key (request errors quote the URL)."""
    text = KEY_PARAM.sub(r"\1***", text)
    key = config.census_api_key
    # A real key is 40 characters; a short one would blot out ordinary words.
    return text.replace(key, "***") if len(key) >= 8 else text


def _excerpt(text: str, config: Config) -> str:
    """The API's answer, readable in one line: tags dropped, at most EXCERPT
    characters."""
    text = text or ""
    if "<" in text and ">" in text:
        text = re.sub(r"(?is)<(head|script|style)\b.*?</\1>", " ", text)
        text = re.sub(r"(?s)<[^>]*>", " ", text)
    text = " ".join(_redact(text, config).split())
    if not text:
        return "(no text)"
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"
