"""The operator e-mails, composed by services.admin.mail and sent through a real
local SMTP server."""

from __future__ import annotations

import csv
import datetime
import io
import socket

import pytest

from services.admin import mail
from shared.config import Config
from tests.support.smtp import SmtpSink

TO = ["ops@example.org", "analyst@example.org"]
DATASET = {
    "id": 4, "state": "nc", "name": "NC 2026-11", "date_added": "2026-11-27",
    "date_received": "2026-11-26", "url": "ftp://nc.example.org/STOPS_Extract.zip",
    "destination": None, "report_email_1": TO[0], "report_email_2": TO[1],
}
RECORD = {
    "id": 7, "dataset_id": 4, "state": "nc", "status": "refreshed", "phase": None,
    "progress": {"done": 5, "total": 5},
    "started_at": "2026-11-27T10:00:03+00:00", "finished_at": "2026-11-27T10:14:51+00:00",
    "counts": {"stops": 3000, "persons": 6100, "searches": 1234567},
    "rejected_rows": 17, "error": None,
}
AS_OF = datetime.date(2026, 11, 27)


@pytest.fixture
def config(smtp) -> Config:
    """Settings of this module's own: these tests need no database."""
    return Config.from_env(environ={}, env_file=None).with_changes(
        smtp_host=smtp.host, smtp_port=smtp.port, mail_from="ODP <odp@example.org>")


def deliver(config: Config, smtp: SmtpSink, message):
    mail.send(config, message)
    return smtp.wait_for(lambda arrived: arrived["Message-ID"] == message["Message-ID"],
                         timeout=10)


def body(message) -> str:
    # SMTP carries lines ended by CRLF; the mail was composed with LF.
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


def csv_attachment(message, filename: str) -> tuple[list[str], list[dict]]:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == filename
    assert attachment.get_content_type() == "text/csv"
    reader = csv.DictReader(io.StringIO(attachment.get_content()))
    return reader.fieldnames, list(reader)


def test_success_mail_lists_counts_and_times(config, smtp):
    arrived = deliver(config, smtp, mail.import_succeeded(config, TO, DATASET, RECORD))

    assert arrived["Subject"] == '[Open Data Policing] NC import "NC 2026-11" is live'
    assert arrived["From"] == "ODP <odp@example.org>"
    assert arrived["To"] == "ops@example.org, analyst@example.org"
    assert arrived["X-Envelope-To"] == "ops@example.org, analyst@example.org"
    assert arrived.get_content_type() == "text/plain"
    text = body(arrived)
    for phrase in ["3,000", "6,100", "1,234,567", "Rejected rows: 17",
                   "2026-11-27T10:00:03+00:00", "2026-11-27T10:14:51+00:00"]:
        assert phrase in text
    assert "stops" in text and "persons" in text and "searches" in text


def test_failure_mail_gives_phase_and_error_verbatim(config, smtp):
    error = ('STOPS.txt line 12: expected 14 fields, got 9\n'
             '  row: 1,"Alder, Town",\tK9 <unit> 100% & more')
    failed = RECORD | {"status": "failed", "phase": "staging", "counts": {}, "error": error}

    arrived = deliver(config, smtp, mail.import_failed(config, TO, DATASET, failed))

    assert arrived["Subject"] == '[Open Data Policing] NC import "NC 2026-11" failed'
    text = body(arrived)
    assert error in text
    assert "staging" in text
    assert "data served before this import is still being served" in text
    assert "is now live" not in text


def test_new_agencies_are_attached_as_csv(config, smtp):
    agencies = [{"id": 12, "name": "Alder Police Department"},
                {"id": 13, "name": 'Birch, "Old Town" Sheriff\'s Office'},
                {"id": 140, "name": "Cedar Campus Police"}]

    arrived = deliver(config, smtp,
                      mail.new_agencies_found(config, TO, DATASET, RECORD, agencies))

    assert arrived["Subject"] == ('[Open Data Policing] NC import "NC 2026-11" '
                                  'found 3 new agencies')
    assert "3 new agencies" in body(arrived)
    fields, rows = csv_attachment(arrived, "new_agencies.csv")
    assert fields == ["id", "name"]
    assert rows == [{"id": "12", "name": "Alder Police Department"},
                    {"id": "13", "name": 'Birch, "Old Town" Sheriff\'s Office'},
                    {"id": "140", "name": "Cedar Campus Police"}]


def test_one_new_agency_is_named_in_the_singular(config):
    message = mail.new_agencies_found(config, TO, DATASET, RECORD,
                                      [{"id": 12, "name": "Alder Police Department"}])

    assert message["Subject"].endswith("found 1 new agency")


def test_compliance_report_attaches_silent_agencies(config, smtp):
    silent = [{"id": 3, "name": "Dogwood, Town of", "last_stop_date": datetime.date(2026, 7, 1)},
              {"id": 9, "name": "Elm Police", "last_stop_date": None}]

    arrived = deliver(config, smtp,
                      mail.compliance_report(config, TO, DATASET, RECORD, silent, AS_OF))

    assert arrived["Subject"] == "[Open Data Policing] NC compliance report for 2026-11-27"
    text = body(arrived)
    assert "2 agencies have not reported" in text
    assert "90 days as of 2026-11-27" in text
    assert "All agencies reported" not in text
    fields, rows = csv_attachment(arrived, "compliance_report.csv")
    assert fields == ["id", "name", "last_stop_date"]
    assert rows == [{"id": "3", "name": "Dogwood, Town of", "last_stop_date": "2026-07-01"},
                    {"id": "9", "name": "Elm Police", "last_stop_date": ""}]


def test_compliance_report_when_every_agency_reported(config, smtp):
    arrived = deliver(config, smtp,
                      mail.compliance_report(config, TO, DATASET, RECORD, [], AS_OF))

    assert arrived["Subject"] == "[Open Data Policing] NC compliance report for 2026-11-27"
    assert not arrived.is_multipart()
    assert list(arrived.iter_attachments()) == []
    lines = body(arrived).strip().splitlines()
    assert len(lines) == 1
    assert "All agencies reported" in lines[0] and "2026-11-27" in lines[0]


def test_line_breaks_in_a_dataset_name_add_no_header(config, smtp):
    dataset = DATASET | {"name": "NC 2026-11\r\nBcc: x@y"}

    message = mail.import_succeeded(config, TO, dataset, RECORD)
    arrived = deliver(config, smtp, message)

    assert message["Bcc"] is None
    assert arrived["Bcc"] is None
    assert arrived["X-Envelope-To"] == "ops@example.org, analyst@example.org"
    assert "\r" not in arrived["Subject"] and "\n" not in arrived["Subject"]
    assert "NC 2026-11" in arrived["Subject"]


def test_send_to_a_closed_port_raises(config):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(OSError):
        mail.send(config.with_changes(smtp_port=port), mail.import_failed(
            config, TO, DATASET, RECORD | {"status": "failed", "error": "boom"}), timeout=2)
