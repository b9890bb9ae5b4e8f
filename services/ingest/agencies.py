"""Stable agency ids: a known name keeps its id, a new name takes the next one.

The ids live in `ingest.agency_ids`, outside the swapped state schema, so
they survive every import; new ones are written in the swap transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from shared.tables import agency_ids

# Every state's agency table in its staging schema: the pipeline fills it
# with the agencies the release named (nc: by description; md, il: by code).
AGENCY_TABLE = """
CREATE TABLE {schema}.agency (
    id integer PRIMARY KEY,
    name text NOT NULL UNIQUE
);
"""


class AgencyIds:
    def __init__(self, state: str, known: dict[str, int]):
        self.state = state
        self.known = known
        self.used: dict[str, int] = {}
        self.new: dict[str, int] = {}
        self._next = max(known.values(), default=0) + 1

    @classmethod
    def load(cls, engine: Engine, state: str) -> AgencyIds:
        with engine.connect() as conn:
            rows = conn.execute(select(agency_ids.c.name, agency_ids.c.id)
                                .where(agency_ids.c.state == state))
            return cls(state, dict(rows.all()))

    def id_for(self, name: str) -> int:
        agency_id = self.used.get(name)
        if agency_id is None:
            agency_id = self.known.get(name)
            if agency_id is None:
                agency_id = self._next
                self._next += 1
                self.new[name] = agency_id
            self.used[name] = agency_id
        return agency_id

    def save_new(self, conn: Connection) -> None:
        if self.new:
            conn.execute(agency_ids.insert(), [
                {"state": self.state, "id": agency_id, "name": name}
                for name, agency_id in self.new.items()])

    def new_agencies(self) -> list[dict]:
        return [{"id": agency_id, "name": name}
                for name, agency_id in sorted(self.new.items(), key=lambda item: item[1])]
