"""`/{state}/api/agency/` and `/{state}/api/agency/{id}/`."""

from __future__ import annotations

from services.gateway import queries
from services.gateway.errors import NotFound
from shared.states import STATES


def require_agency(conn, state: str, agency_id: int) -> dict:
    agency = queries.agency(conn, state, agency_id)
    if agency is None:
        raise NotFound(f"{STATES[state].name} has no agency {agency_id}")
    return agency


class EveryState:
    """A route every state has; the registry is read when a request comes,
    so a state registered after import counts."""

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(STATES)


class AgencyList(EveryState):

    def __init__(self, engine):
        self.engine = engine

    def on_get(self, req, resp, state: str) -> None:
        with self.engine.connect() as conn:
            resp.media = queries.agencies(conn, state)


class Agency(EveryState):

    def __init__(self, engine):
        self.engine = engine

    def on_get(self, req, resp, state: str, agency_id: int) -> None:
        with self.engine.connect() as conn:
            resp.media = require_agency(conn, state, agency_id)
