"""Whole-table updates (agency mapping, md stop reasons) apply once and never
out of order; small pieces of admin that are easiest checked alone."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta, timezone

from services.admin.imports import _iso
from services.admin.reports import _server_unreachable
from shared.tables import stats_applied_updates
from shared.updates import is_newest


def test_an_older_update_arriving_late_is_not_applied(engine):
    newer = datetime.now(UTC)
    older = newer - timedelta(seconds=5)
    with engine.begin() as conn:
        assert is_newest(conn, stats_applied_updates, "test_kind", "md", newer.isoformat())
    with engine.begin() as conn:
        assert not is_newest(conn, stats_applied_updates, "test_kind", "md", older.isoformat())
        # The same update redelivered is not applied twice either.
        assert not is_newest(conn, stats_applied_updates, "test_kind", "md", newer.isoformat())
        assert is_newest(conn, stats_applied_updates, "test_kind", "il", older.isoformat())
    with engine.begin() as conn:
        assert is_newest(conn, stats_applied_updates, "test_kind", "md",
                         (newer + timedelta(seconds=1)).isoformat())


def test_a_refused_mail_is_not_taken_for_a_server_outage():
    assert not _server_unreachable(smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}))
    assert not _server_unreachable(smtplib.SMTPDataError(554, b"rejected"))
    assert _server_unreachable(ConnectionRefusedError())
    assert _server_unreachable(smtplib.SMTPServerDisconnected("gone"))
    assert _server_unreachable(TimeoutError())


def test_operator_times_are_given_in_utc():
    new_york = timezone(timedelta(hours=-5))
    assert _iso(datetime(2026, 11, 27, 22, 0, 4, tzinfo=new_york)) == \
        "2026-11-28T03:00:04+00:00"
    assert _iso(None) is None
