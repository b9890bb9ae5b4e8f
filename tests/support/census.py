"""What the bundled census fixture (services/census/fixture.json) should
show on an agency page, computed from its raw values."""

from __future__ import annotations

from services.census.local_api import load_fixture


def expected_profile(geoid: str) -> dict:
    """API.md's profile of an nc geography, from the fixture's raw values."""
    (place,) = [g for g in load_fixture()["2022"] if g["geoid"] == geoid]
    value = {name: int(place[f"B03002_{number:03d}E"]) for name, number in (
        ("total", 1), ("non_hispanic", 2), ("white", 3), ("black", 4),
        ("native_american", 5), ("asian", 6), ("native_hawaiian", 7), ("some_other", 8),
        ("two_or_more", 9), ("hispanic", 12))}
    return {"white": value["white"], "black": value["black"],
            "native_american": value["native_american"], "asian": value["asian"],
            "other": value["some_other"] + value["native_hawaiian"] + value["two_or_more"],
            "hispanic": value["hispanic"], "non_hispanic": value["non_hispanic"],
            "total": value["total"]}
