"""The operators' report mails: queued in the transaction of the change they
report, sent afterwards by `send_pending` (the service runs it after each
event and on a timer), so an SMTP outage delays a report but never loses it.

Kinds: `live` (the import's numbers are served), `failed` (with the error),
`new_agencies` (a CSV of them) and, after each nc import, `compliance`
(agencies silent for 90 days, or "all agencies reported").
"""

from __future__ import annotations

import logging
import smtplib
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, text, update

from services.admin import mail
from shared.config import Config
from shared.metrics import MAILS
from shared.states import STATES
from shared.tables import datasets, mails

log = logging.getLogger(__name__)

SILENT_DAYS = 90
MAX_ATTEMPTS = 30


def _dataset(conn, record: dict) -> dict:
    """The dataset as it is now, or what the import remembers of it (the
    nightly nc import replaces its dataset)."""
    if record["dataset_id"] is not None:
        row = conn.execute(select(datasets).where(datasets.c.id == record["dataset_id"])).first()
        if row is not None:
            out = dict(row._mapping)
            return out | {key: out[key].isoformat() for key in ("date_added", "date_received")}
    return {"id": record["dataset_id"], "state": record["state"], "name": record["dataset"],
            "date_added": None, "date_received": None, "url": None, "destination": None,
            "report_email_1": None, "report_email_2": None}


def _queue(conn, kind: str, record: dict, to: list[str], **extra) -> None:
    if not to:
        return
    content = {"dataset": _dataset(conn, record), "record": record, **extra}
    conn.execute(mails.insert().values(import_id=record["id"], kind=kind, recipients=to,
                                       content=content))
    MAILS.labels(outcome="queued").inc()


def new_agencies(conn, record: dict, to: list[str]) -> None:
    _queue(conn, "new_agencies", record, to, agencies=record["new_agencies"])


def import_failed(conn, record: dict, to: list[str]) -> None:
    _queue(conn, "failed", record, to)


def import_live(conn, record: dict, to: list[str]) -> None:
    _queue(conn, "live", record, to)
    state = STATES[record["state"]]
    if state.reports_silent_agencies:
        as_of = datetime.now(state.zone).date()
        _queue(conn, "compliance", record, to, as_of=as_of.isoformat(),
               silent=silent_agencies(conn, state.code, as_of))


def silent_agencies(conn, state: str, as_of: date) -> list[dict]:
    """Agencies of the published numbers whose latest stop is more than 90
    days before `as_of` (in the state's time zone), or who have none."""
    if conn.execute(text("SELECT to_regclass(:name)"),
                    {"name": f"stats.{state}_agencies"}).scalar() is None:
        return []
    rows = conn.execute(text(
        f"SELECT id, name, (last_stop_at AT TIME ZONE :zone)::date AS last_stop_date "
        f"FROM stats.{state}_agencies "
        f"WHERE last_stop_at IS NULL OR (last_stop_at AT TIME ZONE :zone)::date < :cutoff "
        f"ORDER BY name, id"),
        {"zone": STATES[state].time_zone, "cutoff": as_of - timedelta(days=SILENT_DAYS)})
    return [{"id": row.id, "name": row.name,
             "last_stop_date": row.last_stop_date.isoformat() if row.last_stop_date else None}
            for row in rows]


def compose(config: Config, kind: str, recipients: list[str], content: dict):
    dataset, record = content["dataset"], content["record"]
    if kind == "live":
        return mail.import_succeeded(config, recipients, dataset, record)
    if kind == "failed":
        return mail.import_failed(config, recipients, dataset, record)
    if kind == "new_agencies":
        return mail.new_agencies_found(config, recipients, dataset, record, content["agencies"])
    if kind == "compliance":
        silent = [agency | {"last_stop_date": date.fromisoformat(agency["last_stop_date"])
                            if agency["last_stop_date"] else None}
                  for agency in content["silent"]]
        return mail.compliance_report(config, recipients, dataset, record, silent,
                                      date.fromisoformat(content["as_of"]))
    raise ValueError(f"unknown mail kind {kind!r}")


def _server_unreachable(error: Exception) -> bool:
    """A connection that failed, as opposed to a server that answered (and
    refused this one mail); smtplib's errors are OSErrors too."""
    if isinstance(error, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    return isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)


def send_pending(engine, config: Config, limit: int = 50) -> int:
    """Send queued mails that are due, oldest first; a failure is retried
    after a pause that doubles each time (up to an hour), MAX_ATTEMPTS
    times in all: about a day. Returns how many were sent."""
    sent = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(mails).where(mails.c.sent_at.is_(None), mails.c.attempts < MAX_ATTEMPTS,
                                mails.c.next_attempt_at <= func.now())
            .order_by(mails.c.id).limit(limit).with_for_update(skip_locked=True)).all()
        for index, row in enumerate(rows):
            try:
                mail.send(config, compose(config, row.kind, row.recipients, row.content))
            except Exception as error:
                MAILS.labels(outcome="failed").inc()
                log.warning("mail %s (%s, import %s) not sent: %s", row.id, row.kind,
                            row.import_id, error)
                # A server that cannot be reached fails every mail alike: all
                # of them wait, rather than each costing a connect timeout.
                down = _server_unreachable(error)
                for failed in rows[index:] if down else [row]:
                    pause = timedelta(seconds=min(3600, 10 * 2 ** failed.attempts))
                    conn.execute(update(mails).where(mails.c.id == failed.id).values(
                        attempts=mails.c.attempts + 1, last_error=str(error)[:500],
                        next_attempt_at=func.now() + pause))
                if down:
                    break
                continue
            conn.execute(update(mails).where(mails.c.id == row.id).values(
                sent_at=func.now(), attempts=mails.c.attempts + 1, last_error=None))
            MAILS.labels(outcome="sent").inc()
            sent += 1
    return sent
