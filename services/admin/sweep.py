"""What events alone can leave behind, resolved from the database.

Admin moves an import on as ingest's and stats' events arrive. An event can
be lost for good (dead-lettered after a long outage, or never published
because its service was stopped at the wrong moment), so every few seconds
admin also reads where each import it dispatched really is: ingest's run of
it (`ingest.import_runs`, written in the same transaction as the data going
live or the failure) and the state's published numbers
(`stats.generations`), and moves it on as the lost event would have. A
request no ingest run has taken up after IMPORT_REDISPATCH_AFTER is sent
again (a second copy loads nothing twice).

Admin only reads the other services' tables here; each service stays the
only writer of its own.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from services.admin import imports as imports_
from shared.config import Config
from shared.events import IMPORT_REQUESTED
from shared.tables import generations, import_runs, imports

log = logging.getLogger(__name__)


def sweep(conn, config: Config, state: str) -> None:
    """Move on `state`'s dispatched imports whose events were lost. The caller
    holds the state's follow lock, so no event handler moves them meanwhile."""
    dispatched = conn.execute(select(imports).where(
        imports.c.state == state, imports.c.status.in_(("queued", "running")),
        imports.c.dispatched_at.is_not(None))).all()
    for row in dispatched:
        run = conn.execute(select(import_runs.c.status, import_runs.c.result)
                           .where(import_runs.c.import_id == str(row.id))).first()
        if run is None:
            _request_again_if_lost(conn, config, row)
        elif run.status == "loaded":
            log.warning("import %s: loaded, but admin had not heard; moved on", row.id)
            imports_.loaded(conn, row.id, run.result["payload"])
        elif run.status == "failed":
            log.warning("import %s: failed, but admin had not heard; moved on", row.id)
            imports_.failed(conn, row.id, run.result["payload"])
    published = conn.execute(select(generations).where(generations.c.state == state)).first()
    if published is not None:
        # Idempotent: what the refresh covers that is still `loaded` goes live.
        imports_.stats_refreshed(conn, {
            "state": state, "generation": published.generation,
            "data_version": published.data_version,
            "refreshed_at": published.refreshed_at.isoformat()})


def _request_again_if_lost(conn, config: Config, row) -> None:
    # From when the last copy went out, not when it went into the outbox: a
    # broker outage must not pile copies up there.
    unsent, last_sent = conn.execute(text(
        "SELECT count(*) FILTER (WHERE published_at IS NULL), max(published_at) "
        "FROM admin.outbox WHERE event_type = :event AND payload->>'import_id' = :id"),
        {"event": IMPORT_REQUESTED, "id": str(row.id)}).one()
    if unsent:
        return
    waited = datetime.now(UTC) - (last_sent or row.dispatched_at)
    if waited < timedelta(seconds=config.import_redispatch_after):
        return
    log.warning("import %s: no ingest_%s run has taken it up in %.0fs; requested again",
                row.id, row.state, waited.total_seconds())
    imports_.send_request(conn, row)
