"""The e-mails the admin service sends to a dataset's operators, and sending them.

Each composer turns a dataset record and an import record (the dictionaries
the admin service keeps) into a plain-text `EmailMessage`: an import that went
live, one that failed, the new agencies an import found (as a CSV attachment)
and the agencies that have stopped reporting. `send` hands a message to the
SMTP server of the settings. Composing and sending are apart so the service can
queue a composed message and send it again when the server was unreachable.
"""

from __future__ import annotations

import csv
import datetime
import io
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from shared.config import Config

SUBJECT_PREFIX = "[Open Data Policing]"
SILENT_DAYS = 90


def import_succeeded(config: Config, to: list[str], dataset: dict,
                     record: dict) -> EmailMessage:
    counts = record.get("counts") or {}
    width = max((len(table) for table in counts), default=0)
    rows = [f"  {table:<{width}}  {count:>12,}" for table, count in counts.items()]
    body = [
        f"The {_dataset(dataset)} was imported (import {record['id']}) and is now live.",
        "",
        "Rows loaded:",
        *(rows or ["  none recorded"]),
        "",
        f"Rejected rows: {record.get('rejected_rows') or 0:,}",
        *_times(record),
    ]
    return _message(config, to, f"{_import(dataset)} is live", body)


def import_failed(config: Config, to: list[str], dataset: dict, record: dict) -> EmailMessage:
    body = [
        f"The import of the {_dataset(dataset)} (import {record['id']}) failed "
        f"during the {record.get('phase') or 'unknown'} phase.",
        "The data served before this import is still being served.",
        "",
        "Error:",
        record.get("error") or "(no error text was recorded)",
        "",
        *_times(record),
    ]
    return _message(config, to, f"{_import(dataset)} failed", body)


def new_agencies_found(config: Config, to: list[str], dataset: dict, record: dict,
                       agencies: list[dict]) -> EmailMessage:
    found = _agencies(len(agencies), "new agency", "new agencies")
    body = [
        f"The import of the {_dataset(dataset)} (import {record['id']}) found {found}.",
        "They are listed in the attached new_agencies.csv.",
    ]
    message = _message(config, to, f"{_import(dataset)} found {found}", body)
    _attach_csv(message, "new_agencies.csv", ["id", "name"],
                ([agency["id"], agency["name"]] for agency in agencies))
    return message


def compliance_report(config: Config, to: list[str], dataset: dict, record: dict,
                      silent: list[dict], as_of: datetime.date) -> EmailMessage:
    subject = f"{SUBJECT_PREFIX} {_state(dataset)} compliance report for {as_of.isoformat()}"
    if not silent:
        body = [f"All agencies reported stops in the {SILENT_DAYS} days before "
                f"{as_of.isoformat()}."]
        return _message(config, to, subject, body)
    count = _agencies(len(silent), "agency has", "agencies have")
    body = [
        f"{count} not reported a stop in {SILENT_DAYS} days as of {as_of.isoformat()}.",
        f"Checked after import {record['id']} of the {_dataset(dataset)}.",
        "They are listed in the attached compliance_report.csv, with the date of",
        "each one's latest stop (empty when it has none).",
    ]
    message = _message(config, to, subject, body)
    rows = ([agency["id"], agency["name"],
             agency["last_stop_date"].isoformat() if agency["last_stop_date"] else ""]
            for agency in silent)
    _attach_csv(message, "compliance_report.csv", ["id", "name", "last_stop_date"], rows)
    return message


def send(config: Config, message: EmailMessage, timeout: float = 10.0) -> None:
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=timeout) as smtp:
        smtp.send_message(message)


def _message(config: Config, to: list[str], subject: str, body: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _header(subject)
    message["From"] = _header(config.mail_from)
    message["To"] = ", ".join(_header(address) for address in to if address)
    message["Date"] = formatdate(usegmt=True)
    # A domain of our own spares make_msgid a DNS lookup of this host's name.
    domain = parseaddr(_header(config.mail_from))[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content("\n".join(body) + "\n")
    return message


def _attach_csv(message: EmailMessage, filename: str, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    message.add_attachment(buffer.getvalue(), subtype="csv", filename=filename)


def _header(value: str) -> str:
    # Dataset names and addresses come from operators; a line break in a
    # header would let them add headers such as Bcc.
    return " ".join(str(value).splitlines())


def _state(dataset: dict) -> str:
    return str(dataset["state"]).upper()


def _import(dataset: dict) -> str:
    return f'{SUBJECT_PREFIX} {_state(dataset)} import "{dataset["name"]}"'


def _dataset(dataset: dict) -> str:
    return f'{_state(dataset)} dataset "{dataset["name"]}"'


def _agencies(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _times(record: dict) -> list[str]:
    return [f"Started:  {record.get('started_at') or 'not recorded'}",
            f"Finished: {record.get('finished_at') or 'not recorded'}"]
