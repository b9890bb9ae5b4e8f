"""The three states: codes, names, time zones and the labels of their codes.

Every label shown to users is written here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class State:
    code: str
    name: str
    time_zone: str
    fips: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def ingest_service(self) -> str:
        return f"ingest_{self.code}"


NC = State("nc", "North Carolina", "America/New_York", "37")
MD = State("md", "Maryland", "America/New_York", "24")
IL = State("il", "Illinois", "America/Chicago", "17")
STATES = {state.code: state for state in (NC, MD, IL)}

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
