"""The operator commands of `odp`: a client of the operator API (under
/admin/api/ at ODP_URL, with ODP_TOKEN as the bearer token) and what each
command prints.

    client = OperatorClient(config)           # CommandError when ODP_TOKEN is unset
    client.get("/admin/api/imports/7/")       # the JSON answer, or CommandError

Every failure the operator can act on (no token, a refused token, the
gateway or the admin service down, a 400 naming bad fields, a 404 or 409)
is a `CommandError` with its message lines and exit status: 2 for what the
operator typed or configured, 1 for the rest. The command line prints it
without a traceback.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from odp.progress import ProgressLine
from shared.config import Config

# Long enough for the gateway's own wait on the admin service (15 s).
REQUEST_TIMEOUT = 30
POLL_INTERVAL = 0.5
# While following an import, how long the API may be unreachable before
# `--follow` gives up (the import itself goes on).
FOLLOW_GRACE = 30
DOWN_STATUSES = (502, 503, 504)


class CommandError(Exception):
    """What to tell the operator (one or more lines) and the exit status."""

    def __init__(self, *lines: str, status: int = 1):
        super().__init__("\n".join(lines))
        self.lines = lines
        self.status = status


class Unreachable(CommandError):
    """The gateway or, behind it, the admin service is down."""


def _description(response: requests.Response) -> tuple[str, dict]:
    """The error body's description and field errors (empty when the body
    is not the gateway's JSON)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason or "", {}
    if not isinstance(body, dict):
        return str(body)[:200], {}
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    return str(body.get("description") or body.get("title") or ""), errors


class OperatorClient:
    def __init__(self, config: Config, session: requests.Session | None = None):
        if not config.odp_token.strip():
            raise CommandError(
                "error: no operator token: set ODP_TOKEN in the environment or in the .env "
                "file of the working directory (`make run` keeps a generated token there)",
                status=2)
        self.base = config.odp_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config.odp_token.strip()}"

    def request(self, method: str, path: str, **kwargs):
        url = f"{self.base}{path}"
        try:
            response = self.session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.ConnectionError as error:
            raise Unreachable(
                f"error: cannot reach the operator API at ODP_URL={self.base} "
                f"({_reason(error)}): the gateway is down, or ODP_URL does not point "
                "at it") from None
        except requests.Timeout:
            raise Unreachable(
                f"error: the operator API at ODP_URL={self.base} did not answer within "
                f"{REQUEST_TIMEOUT} s: the gateway or the admin service is down or "
                "overloaded") from None
        if response.status_code < 400:
            try:
                return response.json()
            except ValueError:
                raise CommandError(
                    f"error: {method} {url} answered {response.status_code} with a body "
                    f"that is not JSON: is ODP_URL={self.base} the gateway?") from None
        description, errors = _description(response)
        status = response.status_code
        if status in (401, 403):
            raise CommandError(
                f"error: the operator API refused the token in ODP_TOKEN (HTTP {status}: "
                f"{description}); check ODP_TOKEN against the admin service's "
                "ODP_ADMIN_TOKENS")
        if status in DOWN_STATUSES:
            raise Unreachable(
                f"error: the operator API at ODP_URL={self.base} is unavailable (HTTP "
                f"{status}: {description}): the gateway or the admin service is down")
        if status == 400:
            lines = [f"error: {field}: {message}" for field, message in errors.items()]
            raise CommandError(*(lines or [f"error: {description}"]), status=2)
        if status in (404, 409):
            raise CommandError(f"error: {description}")
        raise CommandError(f"error: {method} {path} failed with HTTP {status}: {description}")

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict | None = None):
        return self.request("POST", path, json=body if body is not None else {})


def _reason(error: requests.ConnectionError) -> str:
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "unknown host"
    return type(error).__name__


# Formatting.

def _table(headers: list[str], rows: list[list]) -> str:
    cells = [[("-" if value is None else str(value)) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells))
              for i, header in enumerate(headers)]

    def line(values) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths,
                                                                      strict=True)).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def _when(moment: str | None) -> str:
    """An ISO 8601 time as 'YYYY-MM-DD HH:MM:SS' in UTC ('-' when absent)."""
    if not moment:
        return "-"
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _counts(counts: dict | None) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{name} {count:,}" for name, count in counts.items())


def _fields(pairs: list[tuple[str, object]]) -> str:
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"  {label.ljust(width)}  {'-' if value in (None, '') else value}"
                     for label, value in pairs)


def format_dataset(record: dict) -> str:
    emails = [record.get(key) for key in ("report_email_1", "report_email_2")]
    return f"dataset {record['id']}\n" + _fields([
        ("id", record["id"]),
        ("state", record.get("state")),
        ("name", record.get("name")),
        ("date received", record.get("date_received")),
        ("date added", record.get("date_added")),
        ("url", record.get("url")),
        ("destination", record.get("destination")),
        ("report emails", ", ".join(email for email in emails if email)),
    ])


def format_datasets(records: list[dict]) -> str:
    if not records:
        return "no datasets yet (add one with `odp datasets add`)"
    return _table(["ID", "STATE", "NAME", "RECEIVED", "URL"],
                  [[r["id"], r["state"], r["name"], r["date_received"], r["url"]]
                   for r in records])


def _progress(record: dict) -> str:
    progress = record.get("progress") or {}
    done, total = progress.get("done"), progress.get("total")
    if done is None:
        return "-"
    if total:
        return f"{done:,} of {total:,} ({done / total:.0%})"
    return f"{done:,}"


def format_imports(records: list[dict]) -> str:
    if not records:
        return "no imports"
    return _table(
        ["ID", "DATASET", "STATE", "STATUS", "PHASE", "STARTED (UTC)", "FINISHED (UTC)"],
        [[r["id"], r.get("dataset"), r["state"], r["status"], r.get("phase"),
          _when(r.get("started_at")), _when(r.get("finished_at"))] for r in records])


def format_import(record: dict) -> str:
    dataset = record.get("dataset")
    if record.get("dataset_id") is not None:
        dataset = f"{dataset} (dataset {record['dataset_id']})"
    new_agencies = ", ".join(f"{agency['name']} (id {agency['id']})"
                             for agency in record.get("new_agencies") or [])
    rejected = record.get("rejected_rows")
    return f"import {record['id']}\n" + _fields([
        ("dataset", dataset),
        ("state", record.get("state")),
        ("status", record.get("status")),
        ("phase", record.get("phase")),
        ("progress", _progress(record)),
        ("requested (UTC)", _when(record.get("requested_at"))),
        ("started (UTC)", _when(record.get("started_at"))),
        ("finished (UTC)", _when(record.get("finished_at"))),
        ("counts", _counts(record.get("counts"))),
        ("rejected rows", f"{rejected:,}" if rejected is not None else None),
        ("new agencies", new_agencies),
        ("error", record.get("error")),
    ])


# Commands: each takes the client and the parsed arguments, prints, and
# returns the exit status (or raises CommandError).

def datasets_add(client: OperatorClient, args) -> int:
    body = {"state": args.state, "name": args.name, "date_received": args.date_received,
            "url": args.url}
    if args.dest is not None:
        body["destination"] = args.dest
    for number, email in enumerate(args.email or [], start=1):
        body[f"report_email_{number}"] = email
    record = client.post("/admin/api/datasets/", body)
    print(f"created {format_dataset(record)}")
    print(f"import it with: odp import {record['id']} --follow")
    return 0


def datasets_list(client: OperatorClient, args) -> int:
    print(format_datasets(client.get("/admin/api/datasets/")))
    return 0


def find_dataset_id(client: OperatorClient, key: str) -> int:
    """The id of a dataset given by id or by exact name."""
    if key.isdigit():
        return int(key)
    for record in client.get("/admin/api/datasets/"):
        if record["name"] == key:
            return record["id"]
    raise CommandError(f"error: there is no dataset named {key!r} "
                       "(`odp datasets list` shows them)")


def import_dataset(client: OperatorClient, args) -> int:
    dataset_id = find_dataset_id(client, args.dataset)
    answer = client.post(f"/admin/api/datasets/{dataset_id}/import/")
    import_id = answer["import_id"]
    print(f"import {import_id} {answer.get('status', 'queued')}", flush=True)
    if not args.follow:
        print(f"follow it with: odp imports show {import_id}")
        return 0
    return follow_import(client, import_id, args.timeout)


def _phase(record: dict) -> str:
    status = record["status"]
    if status == "queued":
        return "queued"
    if status == "loaded":
        return "waiting for the stats refresh"
    return record.get("phase") or status


def _end_line(progress: ProgressLine) -> None:
    """End the progress display without its "done in" (the import did not
    end well, or goes on)."""
    if progress.interactive and progress.phase is not None:
        progress.stream.write("\n")
        progress.stream.flush()


def follow_import(client: OperatorClient, import_id: int, timeout: float,
                  interval: float = POLL_INTERVAL, stream=None) -> int:
    """Poll the import until it is refreshed (0) or failed (1), drawing its
    progress; 1 with a message when `timeout` seconds pass first."""
    progress = ProgressLine(stream)
    deadline = time.monotonic() + timeout
    unreachable_since = None
    record = None
    try:
        while True:
            try:
                record = client.get(f"/admin/api/imports/{import_id}/")
                unreachable_since = None
            except Unreachable:
                # A restart of the gateway or the admin service: wait a little.
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > FOLLOW_GRACE:
                    _end_line(progress)
                    raise
            if record is not None:
                status = record["status"]
                if status == "refreshed":
                    progress.finish()
                    return _outcome(record)
                if status == "failed":
                    _end_line(progress)
                    return _outcome(record)
                done = (record.get("progress") or {}).get("done")
                total = (record.get("progress") or {}).get("total")
                if status in ("queued", "loaded"):
                    done, total = 0, None
                progress(_phase(record), done or 0, total)
            if time.monotonic() >= deadline:
                _end_line(progress)
                phase = _phase(record) if record is not None else "unknown"
                print(f"error: import {import_id} did not finish within {timeout:g} s "
                      f"(last phase: {phase}); it goes on: see `odp imports show "
                      f"{import_id}`", file=sys.stderr)
                return 1
            time.sleep(interval)
    except KeyboardInterrupt:
        _end_line(progress)
        print(f"stopped following import {import_id}; it goes on: see `odp imports show "
              f"{import_id}`", file=sys.stderr)
        return 130


def _outcome(record: dict) -> int:
    if record["status"] == "failed":
        print(f"import {record['id']} failed during {record.get('phase')}: "
              f"{record.get('error')}", file=sys.stderr)
        if record.get("rejected_rows"):
            print(f"rejected rows: {record['rejected_rows']:,}", file=sys.stderr)
        return 1
    print(f"import {record['id']} refreshed: {_counts(record.get('counts'))}")
    print(f"rejected rows: {record.get('rejected_rows') or 0:,}")
    if record.get("new_agencies"):
        print("new agencies: " + ", ".join(f"{agency['name']} (id {agency['id']})"
                                            for agency in record["new_agencies"]))
    return 0


def imports_list(client: OperatorClient, args) -> int:
    query = {name: value for name, value in (("state", args.state), ("status", args.status),
                                             ("limit", args.limit)) if value is not None}
    print(format_imports(client.get("/admin/api/imports/", params=query)))
    return 0


def imports_show(client: OperatorClient, args) -> int:
    print(format_import(client.get(f"/admin/api/imports/{args.import_id}/")))
    return 0


# Each problem of a refused CSV starts with the line it is on.
_CSV_PROBLEM = re.compile(r"; (?=line \d)")


def agencies_upload(client: OperatorClient, args) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CommandError(f"error: cannot read {path}: {error.strerror}", status=2) from None
    try:
        answer = client.request("PUT", f"/admin/api/agencies/{args.state}/mapping/",
                                data=data, headers={"Content-Type": "text/csv"})
    except CommandError as error:
        if error.status != 2:
            raise
        lines = []
        for line in error.lines:
            prefix = "error: body: "
            if line.startswith(prefix):
                lines += [f"error: {path.name}: {problem}"
                          for problem in _CSV_PROBLEM.split(line[len(prefix):])]
            else:
                lines.append(line)
        raise CommandError(*lines, status=2) from None
    print(f"{answer['state']}: {answer['rows']:,} agencies mapped")
    return 0


def agencies_mapping(client: OperatorClient, args, stream=None) -> int:
    rows = client.get(f"/admin/api/agencies/{args.state}/mapping/")
    writer = csv.writer(stream or sys.stdout, lineterminator="\n")
    writer.writerow(["code", "name", "geoid"])
    for row in rows:
        writer.writerow([row["code"], row["name"], row.get("geoid") or ""])
    return 0


def census_refresh(client: OperatorClient, args) -> int:
    """Ask for a refresh and follow it until the census service loaded the
    profiles (0) or failed (1, with the Census API's message)."""
    body = {"year": args.year} if args.year is not None else {}
    answer = client.post("/admin/api/census/refresh/", body)
    request_id = answer["request_id"]
    print(f"census refresh requested: {request_id}", flush=True)
    deadline = time.monotonic() + args.timeout
    while answer["status"] == "requested":
        if time.monotonic() >= deadline:
            print(f"error: the census refresh {request_id} did not finish within "
                  f"{args.timeout:g} s; it goes on", file=sys.stderr)
            return 1
        time.sleep(POLL_INTERVAL)
        answer = client.get(f"/admin/api/census/refresh/{request_id}/")
    if answer["status"] == "failed":
        print(f"error: the census refresh failed: {answer['error']}", file=sys.stderr)
        return 1
    print(f"census profiles loaded: {answer['profiles']:,} counties, places and states")
    return 0


COMMANDS = {
    ("datasets", "add"): datasets_add,
    ("datasets", "list"): datasets_list,
    ("import", None): import_dataset,
    ("imports", "list"): imports_list,
    ("imports", "show"): imports_show,
    ("agencies", "upload"): agencies_upload,
    ("agencies", "mapping"): agencies_mapping,
    ("census", "refresh"): census_refresh,
}


def run(command: str, action: str | None, args, config: Config) -> int:
    """Run an operator command; errors are printed, not raised."""
    try:
        return COMMANDS[command, action](OperatorClient(config), args)
    except CommandError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return error.status
