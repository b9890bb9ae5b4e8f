"""The release format of each state: `RELEASES`, the ingest service's
registry, one entry per state of STATES (the registry test names a state
without one). The contract a format follows is
services/ingest/release_contract.py. A state package registers its format
with `RELEASES.register(code, MyRelease())` in its `ingest` module.
"""

from __future__ import annotations

from services.ingest.il.release import IlRelease
from services.ingest.md.release import MdRelease
from services.ingest.nc.release import NcRelease
from services.ingest.release_contract import Release, ReleaseRows
from shared.states import StateRegistry

__all__ = ["RELEASES", "Release", "ReleaseRows"]

RELEASES = StateRegistry("release format", {
    "nc": NcRelease(), "md": MdRelease(), "il": IlRelease()})
