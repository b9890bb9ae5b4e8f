"""What a state is, once: codes, names, time zones, labels, and which parts of
the platform it has. Every label shown to users is written here once.

`STATES` is the registry every service builds its own per-state parts from
(ingest: the release format; stats: the summary SQL and facts; the gateway,
admin and census read only what `State` says). A state added outside this
module (a test-only state, say) registers itself with `register`, in a
package named by `ODP_STATE_PACKAGES`; each service's process imports those
packages with `load_state_packages` before it builds its handlers.

    State("nc", "North Carolina", "America/New_York", "37", ...)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from zoneinfo import ZoneInfo

# The aggregates of API.md's tables every state serves, and those only some do.
COMMON_AGGREGATES = ("stops", "stops_by_reason", "searches", "contraband_hit_rate",
                     "stops_by_purpose_group")
SEARCH_TYPE_AGGREGATES = ("searches_by_type", "use_of_force")
NC_ONLY_AGGREGATES = ("arrests", "contraband_types")

# Race families: nc records race and ethnicity as two fields; md and il one
# combined race/ethnicity code (API.md counts them differently).
SEPARATE = "separate"
COMBINED = "combined"

# ACS variables of a census profile (DATA-FORMATS.md, "Census").
B03002_VARIABLES = MappingProxyType({
    "total": "B03002_001E",
    "white": "B03002_003E",
    "black": "B03002_004E",
    "native_american": "B03002_005E",
    "asian": "B03002_006E",
    "native_hawaiian": "B03002_007E",
    "other": "B03002_008E",
    "two_or_more_races": "B03002_009E",
    "hispanic": "B03002_012E",
    "non_hispanic": "B03002_002E",
})
C02003_VARIABLES = MappingProxyType({
    "total": "C02003_001E",
    "white": "C02003_003E",
    "black": "C02003_004E",
    "native_american": "C02003_005E",
    "asian": "C02003_006E",
    "native_hawaiian": "C02003_007E",
    "other": "C02003_008E",
    "two_or_more_races": "C02003_009E",
    "hispanic": "B03002_012E",
    "non_hispanic": "B03002_002E",
})

PURPOSE_GROUPS = ("Safety Violation", "Regulatory and Equipment", "Other")
# Contraband types (API.md, "More aggregates"), in order; the summaries
# keep them as bits 0 to 4.
CONTRABAND_TYPES = ("Drugs", "Alcohol", "Money", "Weapons", "Other")
# The disparity groups, in API.md's order, and the reference group.
DISPARITY_GROUPS = ("white", "black", "hispanic", "asian", "native_american", "other")
REFERENCE_GROUP = "white"


@dataclass(frozen=True, eq=False)  # eq=False: hashable by identity
class State:
    """Everything that is true of a state, whatever service asks."""

    code: str
    name: str
    time_zone: str
    fips: str
    race_family: str
    # Purpose code -> label, in code order; and each purpose group's codes.
    purposes: Mapping[int, str]
    purpose_groups: Mapping[str, tuple[int, ...]]
    # The per-agency aggregates it serves (API.md), in the table's order.
    aggregates: tuple[str, ...] = COMMON_AGGREGATES
    search_types: Mapping[int, str] = field(default_factory=dict)
    # il names no officer; il releases carry a year, not a date.
    has_officers: bool = True
    has_dates: bool = True
    census_variables: Mapping[str, str] = field(default_factory=lambda: B03002_VARIABLES)
    # md: operators maintain a statute-stem to purpose table.
    has_stop_reasons: bool = False
    # nc: find-a-stop, and the compliance report after each import.
    finds_stops: bool = False
    reports_silent_agencies: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def ingest_service(self) -> str:
        return f"ingest_{self.code}"

    @property
    def labels(self) -> dict[str, Mapping[int, str]]:
        """Labels of the codes rows are grouped by: {"purpose": {1: "..."}, ...}."""
        labels = {"purpose": self.purposes,
                  "purpose_group": dict(enumerate(PURPOSE_GROUPS, 1)),
                  "contraband_type": dict(enumerate(CONTRABAND_TYPES))}
        if self.search_types:
            labels["search_type"] = self.search_types
        return labels

    @property
    def analytics(self) -> tuple[str, ...]:
        """The analytics endpoints it serves (API.md, "Analytics")."""
        return ("disparities", "officers") if self.has_officers else ("disparities",)

    def serves(self, endpoint: str) -> bool:
        return endpoint in self.aggregates or endpoint in self.analytics


class StateRegistry(dict):
    """One service's per-state parts, keyed by state code. Asking for a state
    that has none is an error naming the state and the registry; `missing`
    names every state of STATES without an entry (the registry test asks)."""

    def __init__(self, what: str, entries: Mapping | None = None):
        super().__init__(entries or {})
        self.what = what

    def __missing__(self, code):
        raise UnknownState(f"no {self.what} is registered for the state {code!r} "
                           f"(registered: {', '.join(sorted(self)) or 'none'})")

    def register(self, code: str, entry) -> None:
        self[code] = entry

    def missing(self) -> list[str]:
        return [code for code in STATES if code not in self]


class UnknownState(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


NC_PURPOSES = {
    1: "Speed Limit Violation",
    2: "Stop Light/Sign Violation",
    3: "Driving While Impaired",
    4: "Safe Movement Violation",
    5: "Vehicle Equipment Violation",
    6: "Vehicle Regulatory Violation",
    7: "Seat Belt Violation",
    8: "Investigation",
    9: "Other Motor Vehicle Violation",
    10: "Checkpoint",
}
NC_ACTIONS = {
    1: "Verbal Warning",
    2: "Written Warning",
    3: "Citation Issued",
    4: "On-View Arrest",
    5: "No Action Taken",
}
NC_SEARCH_TYPES = {
    1: "Consent",
    2: "Search Warrant",
    3: "Probable Cause",
    4: "Search Incident to Arrest",
    5: "Protective Frisk",
}
NC_SEARCH_BASES = {
    "ER": "Erratic/Suspicious Behavior",
    "OB": "Observation of Suspected Contraband",
    "OI": "Other Official Information",
    "SM": "Suspicious Movement",
    "TIP": "Informant Tip",
    "WTNS": "Witness Observation",
}
NC_RACES = {"A": "Asian", "B": "Black", "I": "Native American", "U": "Other", "W": "White"}
NC_ETHNICITIES = {"H": "Hispanic", "N": "Non-Hispanic"}
GENDERS = {"M": "Male", "F": "Female"}

# Stops before this date are dropped, except the State Highway Patrol's: few
# agencies reported before then.
NC_FIRST_DAY = "2002-01-01"
NC_STATE_HIGHWAY_PATROL = "NC State Highway Patrol"

# Maryland's purposes, in code order (1-10); a stop whose reason maps to one
# of MD_DROPPED_PURPOSES is not loaded.
MD_PURPOSES = {
    1: "Seat Belt Violation",
    2: "Speed Limit Violation",
    3: "Stop Light/Sign Violation",
    4: "Driving While Impaired",
    5: "Safe Movement Violation",
    6: "Vehicle Equipment Violation",
    7: "Vehicle Regulatory Violation",
    8: "Non-motor Vehicle Violations",
    9: "Other Motor Vehicle Violation",
    10: "Other/Unknown",
}
MD_DROPPED_PURPOSES = ("Investigation", "Failure to remain at scene of accident")
MD_FIRST_YEAR = 2013
IL_PURPOSES = {1: "Moving Violation", 2: "Equipment", 3: "Registration", 4: "Unknown"}
# md and il record one combined race/ethnicity code per stop.
COMBINED_RACES = {"W": "White", "B": "Black", "H": "Hispanic", "A": "Asian",
                  "I": "Native American", "U": "Other/Unknown"}


NC = State(
    "nc", "North Carolina", "America/New_York", "37", SEPARATE, NC_PURPOSES,
    {"Safety Violation": (1, 2, 3, 4), "Regulatory and Equipment": (5, 6, 7, 9),
     "Other": (8, 10)},
    aggregates=(COMMON_AGGREGATES[:3] + SEARCH_TYPE_AGGREGATES + COMMON_AGGREGATES[3:]
                + NC_ONLY_AGGREGATES),
    search_types=NC_SEARCH_TYPES, finds_stops=True, reports_silent_agencies=True)
MD = State(
    "md", "Maryland", "America/New_York", "24", COMBINED, MD_PURPOSES,
    {"Safety Violation": (2, 3, 4, 5), "Regulatory and Equipment": (1, 6, 7, 8, 9),
     "Other": (10,)},
    census_variables=C02003_VARIABLES, has_stop_reasons=True)
IL = State(
    "il", "Illinois", "America/Chicago", "17", COMBINED, IL_PURPOSES,
    {"Safety Violation": (1,), "Regulatory and Equipment": (2, 3), "Other": (4,)},
    has_officers=False, has_dates=False, census_variables=C02003_VARIABLES)

STATES: dict[str, State] = {state.code: state for state in (NC, MD, IL)}


def register(state: State) -> None:
    """Add a state defined outside this module (see the module's docstring)."""
    STATES[state.code] = state


def load_state_packages(packages: Iterable[str], part: str | None = None) -> None:
    """Import each state package (it registers its State) and, when `part`
    names a service ("ingest", "stats"), its module of that name, which
    registers the state in that service's registry."""
    for package in packages:
        importlib.import_module(package)
        if part and importlib.util.find_spec(f"{package}.{part}") is not None:
            importlib.import_module(f"{package}.{part}")


class KnownState:
    """A marshmallow validator of a state code that reads the registry when a
    value is checked, not when the schema is defined, so states registered
    later count. `error` is formatted with the codes as `choices`."""

    def __init__(self, error: str = "Must be one of: {choices}."):
        self.error = error

    def __call__(self, code: str) -> bool:
        from marshmallow import ValidationError

        if code not in STATES:
            raise ValidationError(self.error.format(choices=", ".join(sorted(STATES))))
        return True
