"""Report mails wait in admin.mails until the SMTP server takes them: an
outage delays a report, it never loses one."""

from __future__ import annotations

import socket

from sqlalchemy import text

from services.admin import reports


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_mail_waits_out_an_smtp_outage(admin_config, engine, smtp, db):
    record = {"id": 987654, "dataset_id": None, "dataset": "NC outage test", "state": "nc",
              "status": "failed", "phase": "download", "progress": {"done": 0, "total": None},
              "requested_at": None, "started_at": None, "finished_at": None, "counts": {},
              "rejected_rows": 0, "new_agencies": [], "error": "the server said 550"}
    with engine.begin() as conn:
        reports.import_failed(conn, record, ["ops@example.org"])
    down = admin_config.with_changes(smtp_port=closed_port())

    assert reports.send_pending(engine, down) == 0
    (row,) = db("SELECT attempts, last_error, next_attempt_at > now() AS later, sent_at "
                "FROM admin.mails WHERE import_id = 987654")
    assert row.attempts == 1 and row.later and row.sent_at is None and row.last_error
    # Not due yet: no new attempt.
    assert reports.send_pending(engine, down) == 0
    assert db("SELECT attempts FROM admin.mails WHERE import_id = 987654")[0][0] == 1

    with engine.begin() as conn:
        conn.execute(text("UPDATE admin.mails SET next_attempt_at = now() "
                          "WHERE import_id = 987654"))
    assert reports.send_pending(engine, admin_config) >= 1
    message = smtp.wait_for(lambda m: '"NC outage test" failed' in m["Subject"])
    assert "the server said 550" in message.get_content()
    (row,) = db("SELECT attempts, sent_at FROM admin.mails WHERE import_id = 987654")
    assert row.attempts == 2 and row.sent_at is not None


def test_a_state_with_no_published_numbers_has_no_silent_agencies(engine):
    from datetime import date

    with engine.connect() as conn:
        assert reports.silent_agencies(conn, "il", date(2026, 11, 27)) == []
