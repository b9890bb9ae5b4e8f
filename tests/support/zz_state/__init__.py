"""Zedland (zz), a state that exists only in the tests: the proof that a
state is one package plus one registry entry per service.

Its release is a zip holding `stops.csv`, one stop a line with a header:

    stop_id,agency,date,purpose,race,searched,contraband,officer
    1,Zed City Police,2020-03-04,1,B,1,0,A7

(`race` one combined race/ethnicity code, as md and il record it). The
services find this package through ODP_STATE_PACKAGES: importing it
registers the State; its `ingest` and `stats` modules register the release
format and the summary in those services' registries.
"""

from shared.states import COMBINED, State, register

ZZ = State(
    "zz", "Zedland", "America/Denver", "99", COMBINED,
    {1: "Speeding", 2: "Broken Light", 3: "Other Reason"},
    {"Safety Violation": (1,), "Regulatory and Equipment": (2,), "Other": (3,)},
    census_variables={})

register(ZZ)
PACKAGE = __name__
