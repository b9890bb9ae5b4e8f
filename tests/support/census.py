"""What the bundled census fixture (services/census/fixture.json) should
show on an agency page and store in census.profiles, computed from its raw
values."""

from __future__ import annotations

from services.census.local_api import load_fixture
from shared.states import STATES

# Each state's own profile (statewide figures): its GEO_ID and NAME as the
# Census API gives them.
STATE_PROFILES = {
    "nc": ("0400000US37", "North Carolina"),
    "md": ("0400000US24", "Maryland"),
    "il": ("0400000US17", "Illinois"),
}


def fixture_geography(geoid: str, year: str = "2022") -> dict:
    """The fixture's raw geography of that GEO_ID."""
    (geography,) = [g for g in load_fixture()[year] if g["geoid"] == geoid]
    return geography


def expected_profile(geoid: str) -> dict:
    """API.md's profile of an nc geography, from the fixture's raw values."""
    place = fixture_geography(geoid)
    value = {name: int(place[f"B03002_{number:03d}E"]) for name, number in (
        ("total", 1), ("non_hispanic", 2), ("white", 3), ("black", 4),
        ("native_american", 5), ("asian", 6), ("native_hawaiian", 7), ("some_other", 8),
        ("two_or_more", 9), ("hispanic", 12))}
    return {"white": value["white"], "black": value["black"],
            "native_american": value["native_american"], "asian": value["asian"],
            "other": value["some_other"] + value["native_hawaiian"] + value["two_or_more"],
            "hispanic": value["hispanic"], "non_hispanic": value["non_hispanic"],
            "total": value["total"]}


def expected_population(geoid: str) -> dict:
    """The population counts stored beside a profile (API.md's disparities),
    from the fixture's B03002 values whatever the state: non-Hispanic races,
    pop_other the sum of native Hawaiian, some other race and two or more
    races; and Hispanics."""
    raw = fixture_geography(geoid)

    def b03002(number: int) -> int:
        return int(raw[f"B03002_{number:03d}E"])

    return {"pop_white": b03002(3), "pop_black": b03002(4),
            "pop_native_american": b03002(5), "pop_asian": b03002(6),
            "pop_other": b03002(7) + b03002(8) + b03002(9),
            "pop_hispanic": b03002(12)}


def expected_stored(geoid: str) -> dict:
    """The census.profiles row of a fixture geography (CDPs are not stored):
    geoid, state, name, year, the state's fields (DATA-FORMATS.md's table)
    and the population counts."""
    raw = fixture_geography(geoid)
    (state,) = [code for code, known in STATES.items()
                if known.census_variables and known.fips == raw["state_fips"]]
    return {"geoid": geoid, "state": state, "name": raw["name"], "year": 2022,
            **{field: int(raw[variable])
               for field, variable in STATES[state].census_variables.items()},
            **expected_population(geoid)}


def expected_state_profile(state: str) -> dict:
    """The stored row of the state's own profile."""
    geoid, name = STATE_PROFILES[state]
    row = expected_stored(geoid)
    assert (row["state"], row["name"]) == (state, name)
    return row
