"""Applying an event that carries a whole table (an agency mapping, the md
stop reasons) at most once and never out of order.

Such events can arrive out of order: an outbox is relayed from several
places at once, handlers run side by side, and a requeued message goes to
the back of its queue. A consumer applies one only when it is newer than
the last it applied, under a lock per kind and state:

    with engine.begin() as conn:
        if is_newest(conn, stats_applied_updates, "agency_mapping", state, updated_at):
            ...replace the table...
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, select, text
from sqlalchemy.dialects.postgresql import insert

from shared.db import advisory_key


def is_newest(conn, table: Table, kind: str, state: str, updated_at: str) -> bool:
    """True, and recorded as applied, when `updated_at` is newer than the
    last update of `kind` for `state` (caller's transaction, which holds
    the lock until it commits)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                 {"key": advisory_key(f"{table.schema}:{kind}:{state}")})
    moment = datetime.fromisoformat(updated_at)
    last = conn.execute(select(table.c.updated_at).where(
        table.c.kind == kind, table.c.state == state)).scalar()
    if last is not None and last >= moment:
        return False
    conn.execute(insert(table).values(kind=kind, state=state, updated_at=moment)
                 .on_conflict_do_update(index_elements=[table.c.kind, table.c.state],
                                        set_={"updated_at": moment}))
    return True
