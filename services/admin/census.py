"""Census refreshes operators ask for: recorded as `requested`, sent to the
census service as `census_requested`, and followed to `loaded` or
`failed` through its events.

    {"request_id": "9f...", "years": [2022], "status": "loaded",
     "requested_at": "...", "finished_at": "...", "profiles": 1834, "error": null}
"""

from __future__ import annotations

import uuid
from datetime import UTC

from sqlalchemy import func, select, update

from shared import outbox
from shared.events import ADMIN_SOURCE, CENSUS_LOADED, CENSUS_REQUESTED
from shared.operator import NotFound
from shared.tables import admin_outbox, census_refreshes


def record(row) -> dict:
    out = dict(row._mapping)
    for key in ("requested_at", "finished_at"):
        out[key] = out[key].astimezone(UTC).isoformat() if out[key] else None
    return out


def request(conn, years: list[int] | None) -> dict:
    request_id = uuid.uuid4().hex
    conn.execute(census_refreshes.insert().values(request_id=request_id, years=years,
                                                  status="requested"))
    outbox.record(conn, ADMIN_SOURCE, CENSUS_REQUESTED,
                  {"request_id": request_id, "years": years}, table=admin_outbox)
    return get(conn, request_id)


def get(conn, request_id: str) -> dict:
    row = conn.execute(select(census_refreshes)
                       .where(census_refreshes.c.request_id == request_id)).first()
    if row is None:
        raise NotFound(f"there is no census refresh {request_id}")
    return record(row)


def ended(conn, event_type: str, payload: dict) -> None:
    """A refresh's outcome; one asked for elsewhere (the census service's
    rpc) is not ours to record."""
    loaded = event_type == CENSUS_LOADED
    conn.execute(update(census_refreshes).where(
        census_refreshes.c.request_id == payload["request_id"],
        census_refreshes.c.status == "requested").values(
        status="loaded" if loaded else "failed", finished_at=func.now(),
        profiles=payload.get("profiles"), error=None if loaded else payload["error"]))
