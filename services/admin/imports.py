"""Import records and their life: queued, running, loaded, refreshed or failed.

One import of a state runs at a time. A request is stored as `queued`; when
no other import of its state is under way, `dispatch_next` puts its
`import_requested` in the outbox and stamps `dispatched_at`. The events of
ingest and stats move it on; each move is guarded by the status it comes
from, so a late or repeated event (a progress after the outcome, a
redelivery) changes nothing. When an import ends, the next of its state goes.

    {"id": 7, "dataset_id": 3, "state": "nc", "status": "running",
     "phase": "Stop.txt", "progress": {"done": 1200000, "total": 5000000},
     "started_at": "2026-11-27T03:00:04+00:00", "finished_at": null,
     "counts": {}, "rejected_rows": 0, "error": null}
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from services.admin import reports
from shared import outbox
from shared.config import Config
from shared.db import advisory_key
from shared.events import (
    ADMIN_SOURCE,
    AGENCY_MAPPING_UPDATED,
    CENSUS_HANDLER,
    CENSUS_REQUESTED,
    IMPORT_REQUESTED,
    MAPPING_HANDLER,
    STOP_REASONS_HANDLER,
    STOP_REASONS_UPDATED,
)
from shared.nameko_support import handler_queue, import_queue, publisher
from shared.operator import Conflict, NotFound
from shared.tables import admin_outbox, imports, refreshes

UNDER_WAY = ("queued", "running", "loaded")


def record(row) -> dict:
    row = row._mapping
    return {
        "id": row["id"], "dataset_id": row["dataset_id"], "dataset": row["dataset_name"],
        "state": row["state"],
        "status": row["status"], "phase": row["phase"],
        "progress": {"done": row["progress_done"], "total": row["progress_total"]},
        "requested_at": _iso(row["requested_at"]), "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]), "counts": row["counts"],
        "rejected_rows": row["rejected_rows"], "new_agencies": row["new_agencies"],
        "error": row["error"],
    }


def _iso(moment) -> str | None:
    """ISO 8601 in UTC (API.md), whatever the database session's time zone."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def get(conn, import_id: int) -> dict:
    row = conn.execute(select(imports).where(imports.c.id == import_id)).first()
    if row is None:
        raise NotFound(f"there is no import {import_id}")
    return record(row)


def listed(conn, state: str | None = None, status: str | None = None,
           limit: int = 50) -> list[dict]:
    query = select(imports).order_by(imports.c.id.desc()).limit(limit)
    if state:
        query = query.where(imports.c.state == state)
    if status:
        query = query.where(imports.c.status == status)
    return [record(row) for row in conn.execute(query)]


def request(conn, dataset: dict, report_to: list[str] | None = None) -> dict:
    """Queue an import of `dataset` and dispatch it if its state is free.
    A dataset with an import under way is refused (Conflict): repeated
    requests, a client retrying after a timeout, must not queue the same
    release again and again."""
    # Two requests at once take turns here, so only one can pass the check.
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                 {"key": advisory_key(f"admin-import-of:{dataset['id']}")})
    under_way = conn.execute(select(imports.c.id, imports.c.status).where(
        imports.c.dataset_id == dataset["id"], imports.c.status.in_(UNDER_WAY))
        .order_by(imports.c.id).limit(1)).first()
    if under_way is not None:
        raise Conflict(f"dataset {dataset['name']!r} already has import {under_way.id} "
                       f"{under_way.status}; follow it (odp imports show {under_way.id}) "
                       "or wait for it to end")
    if report_to is None:
        report_to = [dataset[key] for key in ("report_email_1", "report_email_2")
                     if dataset[key]]
    import_id = conn.execute(imports.insert().values(
        dataset_id=dataset["id"], state=dataset["state"], url=dataset["url"],
        destination=dataset["destination"], dataset_name=dataset["name"],
        report_to=report_to, status="queued",
    ).returning(imports.c.id)).scalar_one()
    dispatch_next(conn, dataset["state"])
    return get(conn, import_id)


def dispatch_next(conn, state: str) -> int | None:
    """Request the oldest waiting import of `state` if none is under way."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                 {"key": advisory_key(f"admin-dispatch:{state}")})
    busy = conn.execute(select(imports.c.id).where(
        imports.c.state == state, imports.c.dispatched_at.is_not(None),
        imports.c.status.in_(UNDER_WAY)).limit(1)).first()
    if busy is not None:
        return None
    waiting = conn.execute(
        select(imports).where(imports.c.state == state, imports.c.status == "queued",
                              imports.c.dispatched_at.is_(None))
        .order_by(imports.c.id).limit(1)).first()
    if waiting is None:
        return None
    send_request(conn, waiting)
    return waiting.id


def send_request(conn, row) -> None:
    """Put the import request of `row` (an imports row) in the outbox, stamped
    as dispatched now. Sent twice, it loads once: the second finds the
    import ended (ingest's import_runs)."""
    conn.execute(update(imports).where(imports.c.id == row.id)
                 .values(dispatched_at=func.now()))
    outbox.record(conn, ADMIN_SOURCE, IMPORT_REQUESTED, {
        "import_id": str(row.id), "state": row.state, "url": row.url,
        "destination": row.destination, "dataset_id": row.dataset_id,
    }, table=admin_outbox)


def admin_publisher(config: Config):
    """Publishes admin's outbox; each event that must reach a service (an
    import or census request, a new mapping or stop-reason table) also
    declares that service's queue, so it waits there even if the service
    has never run on this broker."""
    def consumers(source: str, event_type: str, payload: dict) -> list:
        if event_type == IMPORT_REQUESTED:
            # The outbox keeps the event's name and payload; the publisher
            # routes each request by its payload's state (import_requested.md),
            # rows recorded before that routing included, to this queue alone.
            return [import_queue(config, payload["state"])]
        handler = {CENSUS_REQUESTED: ("census", CENSUS_HANDLER),
                   AGENCY_MAPPING_UPDATED: MAPPING_HANDLER,
                   STOP_REASONS_UPDATED: STOP_REASONS_HANDLER}.get(event_type)
        return [handler_queue(config, source, event_type, *handler)] if handler else []

    return publisher(config, consumers)


def own_id(import_id: str) -> int | None:
    """Our id for an event's import_id; None for imports admin did not ask
    for (the command line's, the samples')."""
    return int(import_id) if str(import_id).isdigit() else None


def _move(conn, import_id: int, from_statuses, **values):
    return conn.execute(update(imports).where(
        imports.c.id == import_id, imports.c.status.in_(from_statuses))
        .values(**values).returning(imports)).first()


def progressed(conn, import_id: int, phase: str, done: int, total: int | None) -> None:
    _move(conn, import_id, ("queued", "running"), status="running", phase=phase,
          progress_done=done, progress_total=total,
          started_at=func.coalesce(imports.c.started_at, func.now()))


def loaded(conn, import_id: int, payload: dict) -> None:
    row = _move(conn, import_id, ("queued", "running"), status="loaded", phase="loaded",
                data_version=payload["data_version"], counts=payload["counts"],
                rejected_rows=payload["rejected_rows"], rejects_file=payload["rejects_file"],
                new_agencies=payload["new_agencies"],
                started_at=func.coalesce(imports.c.started_at, func.now()))
    if row is None:
        return
    if payload["new_agencies"]:
        reports.new_agencies(conn, record(row), row.report_to)
    # The refresh may have been heard of before the load was.
    seen = conn.execute(select(refreshes).where(refreshes.c.state == row.state)).first()
    if seen is not None:
        _refreshed_up_to(conn, row.state, seen.data_version)


def failed(conn, import_id: int, payload: dict) -> None:
    row = _move(conn, import_id, ("queued", "running"), status="failed",
                phase=payload["phase"], error=payload["error"],
                rejected_rows=payload["rejected_rows"], rejects_file=payload["rejects_file"],
                finished_at=func.now())
    if row is None:
        return
    reports.import_failed(conn, record(row), row.report_to)
    dispatch_next(conn, row.state)


def stats_refreshed(conn, payload: dict) -> None:
    values = {"data_version": payload["data_version"], "generation": payload["generation"],
              "refreshed_at": payload["refreshed_at"]}
    conn.execute(insert(refreshes).values(state=payload["state"], **values)
                 .on_conflict_do_update(index_elements=[refreshes.c.state], set_=values,
                                        where=refreshes.c.data_version
                                        <= payload["data_version"]))
    _refreshed_up_to(conn, payload["state"], payload["data_version"])


def _refreshed_up_to(conn, state: str, data_version: int) -> None:
    """Every loaded import of `state` the refresh covers is now live."""
    rows = conn.execute(update(imports).where(
        imports.c.state == state, imports.c.status == "loaded",
        imports.c.data_version <= data_version)
        .values(status="refreshed", phase="refreshed", finished_at=func.now())
        .returning(imports)).all()
    for row in rows:
        reports.import_live(conn, record(row), row.report_to)
    if rows:
        dispatch_next(conn, state)
