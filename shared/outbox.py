"""The transactional outbox.

An event that announces a database change is inserted into an outbox table
in the same transaction as the change, then published by `relay`. A crash
between commit and publish leaves the row pending and the next relay sends
it; a crash between publish and marking sends it twice, which consumers
absorb because every payload carries the ids that make it unique.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from shared.events import validated
from shared.tables import outbox

log = logging.getLogger(__name__)


def record(conn: Connection, source: str, event_type: str, payload: dict,
           table=outbox) -> None:
    """Queue an event inside the caller's transaction."""
    validated(event_type, payload)
    conn.execute(table.insert().values(source=source, event_type=event_type, payload=payload))


def relay(engine: Engine, dispatch, table=outbox, limit: int = 100) -> int:
    """Publish pending events in order with `dispatch(source, type, payload)`.

    Rows are locked while they are sent so two relays never send the same
    row at once. Returns how many were published.
    """
    sent = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(table.c.id, table.c.source, table.c.event_type, table.c.payload)
                .where(table.c.published_at.is_(None))
                .order_by(table.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                dispatch(row.source, row.event_type, row.payload)
                conn.execute(update(table).where(table.c.id == row.id)
                             .values(published_at=func.now()))
                sent += 1
        if len(rows) < limit:
            return sent

