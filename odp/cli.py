"""`odp`: the platform's command line for operators and development.

Development and local operation:

    odp db setup                        create the database and roles, migrate
    odp db wait [--reader] [--timeout S] wait for the schema to be migrated
    odp ingest nc --url URL [--dest DIR] [--min-stop-id A --max-stop-id B]
    odp files [--state S] [--prune]     what the imports keep in DATA_DIR; prune it now
    odp facts STATE                     a state's landing-page facts
    odp run                             the whole stack, as `make run` starts it

Operator commands, through the operator API at ODP_URL with the bearer
token ODP_TOKEN (odp/operator.py):

    odp datasets add --state nc --name NAME --date-received YYYY-MM-DD --url URL
                     [--dest DIR] [--email ADDR [--email ADDR]]
    odp datasets list
    odp import DATASET [--follow [--timeout SECONDS]]   by id or exact name
    odp imports list [--state S] [--status S] [--limit N]
    odp imports show ID
    odp agencies upload STATE FILE.csv  replace the state's agency mapping
    odp agencies mapping STATE          print it as CSV (code,name,geoid)
    odp census refresh [--year Y]       load the census profiles again, and follow

They exit 0 on success, 2 when the input or the setup is wrong (a field the
API refused, no ODP_TOKEN) and 1 otherwise (a refused token, the gateway or
the admin service down, an unknown dataset, a conflict, a failed import).
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid

from odp.analytics import COMMANDS as ANALYTICS_COMMANDS
from odp.analytics import add_analytics_commands
from shared.config import Config
from shared.logs import setup_logging
from shared.operator import IMPORT_STATUSES
from shared.states import STATES, load_state_packages

log = logging.getLogger("odp")
OPERATOR_COMMANDS = ("datasets", "import", "imports", "agencies", "census")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odp", description="Open Data Policing: operate and develop the platform.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database setup")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser(
        "setup", help="create the database and roles if missing and run the migrations")
    wait = db_commands.add_parser(
        "wait", help="wait until the database's schema is at this code's migrations",
        description="Exit 0 once the database's schema is at the newest migration of this "
                    "code (after `odp db setup`), 1 after the timeout: a container's start "
                    "waits here for the migrate Job.")
    wait.add_argument("--reader", action="store_true",
                      help="connect with the gateway's read-only login (READER_DATABASE_URL)")
    wait.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                      help="give up after this long (default 600)")

    ingest = commands.add_parser(
        "ingest", help="load a state's release here, in this process",
        description="Download, check and load a release through the same pipeline the "
                    "ingest service runs, with a progress display. Events are published "
                    "when the broker is reachable; otherwise they wait in the outbox.")
    ingest.add_argument("state", choices=sorted(STATES), help="the release's state")
    ingest.add_argument("--url", required=True,
                        help="http(s)://, ftp://, ftp://nc.us/ (the state's server) or "
                             "file:// (when ODP_ALLOW_FILE_URLS is on)")
    ingest.add_argument("--dest", help="folder to download and unpack into (reused when it "
                                       "already holds the release's files)")
    ingest.add_argument("--min-stop-id", type=int, help="load only stops from this id (nc)")
    ingest.add_argument("--max-stop-id", type=int, help="load only stops up to this id (nc)")
    ingest.add_argument("--import-id", help="id for events and records (default: generated)")

    files = commands.add_parser(
        "files", help="list the import folders kept in DATA_DIR, or prune them now",
        description="List each import folder kept in the data folder (DATA_DIR) with its "
                    "state, import id, status (from the database, when it answers), what "
                    "is kept, size and age, and the total. An import that loaded keeps only "
                    "its reports (rejects.csv, new_agencies.csv); a failed one keeps its "
                    "files for INGEST_KEEP_FAILED_DAYS days or until the state's next import "
                    "loads. Each import prunes its state's folders when it ends; --prune "
                    "does it now. Run it where DATA_DIR is (the ingest services' volume).")
    files.add_argument("--state", choices=sorted(STATES), help="only this state's folders")
    files.add_argument("--prune", action="store_true",
                       help="first remove what ended imports no longer need (a state with "
                            "an import running is left to that import)")

    dead = commands.add_parser(
        "dead-letters", help="list the messages the services gave up on, or send them back",
        description="Each service's dead letters (<service>.dead-letters on the broker): "
                    "the messages its handlers failed HANDLER_RETRIES times, or could never "
                    "take (malformed), with the queue, the tries and the error. --replay "
                    "sends them back to their handlers' queues, tries reset, once what "
                    "failed them is mended.")
    dead.add_argument("--service", help="only this service's (admin, stats, census, "
                                        "ingest_nc, ...)")
    dead.add_argument("--payloads", action="store_true", help="print each message's payload")
    dead.add_argument("--replay", action="store_true",
                      help="send every message listed back to its handler's queue")

    facts = commands.add_parser(
        "facts", help="print a state's landing-page facts (from the public API at ODP_URL)")
    facts.add_argument("state", choices=sorted(STATES))

    commands.add_parser(
        "run", help="run every service, supervised, and load the sample releases",
        description="What `make run` starts: the services in one supervised process "
                    "group, with the bundled sample releases imported through the bus.")
    add_operator_commands(commands)
    add_analytics_commands(commands)
    return parser


OPERATOR_NOTE = ("Talks to the operator API of the gateway at ODP_URL, with ODP_TOKEN as "
                 "the bearer token (both read from the environment or from .env).")


class AtMostTwice(argparse.Action):
    """An option that may be given once or twice (report addresses)."""

    def __call__(self, parser, namespace, value, option_string=None):
        values = [*(getattr(namespace, self.dest) or []), value]
        if len(values) > 2:
            parser.error(f"{option_string} may be given at most twice")
        setattr(namespace, self.dest, values)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps the prose of a description or epilog, but keeps its indented
    lines (the examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line if line.startswith("  ")
                         else super(HelpFormatter, self)._fill_text(line, width, indent)
                         for line in text.split("\n"))


def _operator_parser(commands, name: str, help: str, description: str, *examples: str):
    return commands.add_parser(
        name, help=help, description=f"{description} {OPERATOR_NOTE}",
        epilog="example:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=HelpFormatter)


def _group(commands, name: str, help: str, description: str, *examples: str):
    group = _operator_parser(commands, name, help, description, *examples)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_operator_commands(commands) -> None:
    datasets = _group(commands, "datasets", "dataset records (operator API)",
                      "Register the releases that can be imported, and list them.",
                      "odp datasets list", "odp datasets add --help")
    add = _operator_parser(
        datasets, "add", "register a release to import",
        "Register a dataset: a state's release at a URL, to import later with "
        "`odp import`. Prints the created record. A refused field is printed as "
        "'error: FIELD: message' (exit 2); a name or URL already used is exit 1.",
        "odp datasets add --state nc --name 'NC 2026-11' --date-received 2026-11-26 \\",
        "    --url ftp://nc.us/ --email ops@example.org")
    add.add_argument("--state", required=True, choices=sorted(STATES),
                     help="the release's state")
    add.add_argument("--name", required=True, help="a name of your own, unique")
    add.add_argument("--date-received", required=True, metavar="YYYY-MM-DD",
                     help="when the state delivered the release")
    add.add_argument("--url", required=True,
                     help="where the release is: http(s)://, ftp://, ftp://nc.us/ (the "
                          "state's server with the configured login) or file:// where the "
                          "services allow it")
    add.add_argument("--dest", metavar="DIR",
                     help="folder inside the services' data folder to download into")
    add.add_argument("--email", action=AtMostTwice, metavar="ADDR",
                     help="who is mailed the import's outcome (at most twice)")
    _operator_parser(datasets, "list", "list the dataset records",
                     "A table of every dataset: id, state, name, date received, url.",
                     "odp datasets list")

    run_import = _operator_parser(
        commands, "import", "import a dataset through the services (operator API)",
        "Ask for an import of a registered dataset; prints 'import N queued'. One import "
        "of a state runs at a time, so it may wait for another. With --follow, show its "
        "progress until the stats refresh makes it live (exit 0, with its counts) or it "
        "fails (exit 1, with the phase and the error).",
        "odp import 'NC 2026-11' --follow")
    run_import.add_argument("dataset", metavar="DATASET",
                            help="the dataset's id, or its exact name")
    run_import.add_argument("--follow", action="store_true",
                            help="poll the import and show its progress until it ends")
    run_import.add_argument("--timeout", type=float, default=3600, metavar="SECONDS",
                            help="with --follow, give up following (exit 1) after this "
                                 "long; the import goes on (default: %(default)g)")

    imports = _group(commands, "imports", "imports and their progress (operator API)",
                     "List imports and read one.", "odp imports list --status running",
                     "odp imports show 7")
    listed = _operator_parser(
        imports, "list", "list imports, newest first",
        "A table of imports, newest first: id, dataset, state, status, phase, started, "
        "finished (UTC).", "odp imports list --state nc --status failed --limit 10")
    listed.add_argument("--state", choices=sorted(STATES), help="only this state's")
    listed.add_argument("--status", choices=IMPORT_STATUSES, help="only imports in this status")
    listed.add_argument("--limit", type=int, metavar="N", help="at most N (default 50)")
    show = _operator_parser(
        imports, "show", "one import in full",
        "An import's status, phase, progress, times, counts, rejected rows and error.",
        "odp imports show 7")
    show.add_argument("import_id", type=int, metavar="ID", help="the import's id")

    agencies = _group(commands, "agencies", "agency mappings (operator API)",
                      "The mapping of raw agency codes (md, il) or descriptions (nc) to "
                      "display names and census GEO_IDs.",
                      "odp agencies mapping nc > nc-agencies.csv",
                      "odp agencies upload nc nc-agencies.csv")
    upload = _operator_parser(
        agencies, "upload", "replace a state's agency mapping with a CSV file",
        "Replace the state's whole agency mapping with FILE, a CSV with the header "
        "code,name,geoid. It applies at once to the current agencies and to later "
        "imports. A refused file prints each problem with its line and column (exit 2).",
        "odp agencies upload nc nc-agencies.csv")
    upload.add_argument("state", choices=sorted(STATES), metavar="STATE",
                        help=f"the mapping's state ({', '.join(sorted(STATES))})")
    upload.add_argument("file", metavar="FILE.csv", help="the CSV file (code,name,geoid)")
    mapping = _operator_parser(
        agencies, "mapping", "print a state's agency mapping as CSV",
        "Print the state's agency mapping in force as CSV (code,name,geoid), the form "
        "`odp agencies upload` takes.",
        "odp agencies mapping nc > nc-agencies.csv")
    mapping.add_argument("state", choices=sorted(STATES), metavar="STATE",
                         help=f"the mapping's state ({', '.join(sorted(STATES))})")

    census = _group(commands, "census", "census profiles (operator API)",
                    "The census profiles of the agencies.", "odp census refresh")
    refresh = _operator_parser(
        census, "refresh", "ask for the census profiles to be loaded again",
        "Ask for the census profiles to be loaded again and follow the request until "
        "the census service has loaded them (exit 0) or failed (exit 1, with the "
        "Census API's message).",
        "odp census refresh --year 2022")
    refresh.add_argument("--year", type=int, metavar="Y",
                         help="the ACS 5-year release to load (default: the configured "
                              "years)")
    refresh.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                         help="give up following after this long (default 600)")


def main(argv=None) -> int:
    config = Config.from_env()
    # States defined outside the code base count among the choices.
    load_state_packages(config.state_packages, "ingest")
    args = build_parser().parse_args(argv)
    setup_logging(config.log_level, log_format=config.log_format)
    if args.command == "db" and args.db_command == "wait":
        from shared.dbsetup import wait_for_schema

        url = config.reader_url() if args.reader else config.database_url
        return 0 if wait_for_schema(url, args.timeout) else 1
    if args.command == "db":
        from shared.dbsetup import setup

        try:
            setup(config)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"database ready: {config.database_url}")
        return 0
    if args.command == "ingest":
        return ingest(args, config)
    if args.command == "files":
        from odp.files import run as run_files

        return run_files(args, config)
    if args.command == "dead-letters":
        from odp.dead_letters import run as run_dead_letters

        return run_dead_letters(args, config)
    if args.command == "facts":
        from odp.facts import fetch_facts, format_facts

        try:
            print(format_facts(fetch_facts(config.odp_url, args.state)))
        except (RuntimeError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if args.command in ANALYTICS_COMMANDS:
        from odp.analytics import run as run_analytics

        return run_analytics(args, config)
    if args.command in OPERATOR_COMMANDS:
        from odp.operator import run

        return run(args.command, getattr(args, "action", None), args, config)
    if args.command == "run":
        from odp.stack import run_stack

        return run_stack(config)
    return 2


def ingest(args, config: Config) -> int:
    from odp.progress import ProgressLine
    from services.ingest.formats import RELEASES
    from services.ingest.pipeline import run_import
    from shared import outbox
    from shared.db import make_engine
    from shared.events import IMPORT_PROGRESS
    from shared.nameko_support import broker_reachable, publisher

    limiting = [code for code, release in RELEASES.items() if release.limits_stop_ids]
    if args.state not in limiting and (args.min_stop_id is not None
                                       or args.max_stop_id is not None):
        print(f"--min-stop-id and --max-stop-id apply to {', '.join(limiting)} only",
              file=sys.stderr)
        return 2
    if args.import_id and args.import_id.isdigit():
        # All-digit ids are the admin service's: its records would follow this run.
        print("--import-id must not be all digits (those are the admin service's ids)",
              file=sys.stderr)
        return 2
    import_id = args.import_id or f"cli-{uuid.uuid4().hex[:12]}"
    request = {"import_id": import_id, "state": args.state, "url": args.url,
               "destination": args.dest, "min_stop_id": args.min_stop_id,
               "max_stop_id": args.max_stop_id}
    dispatch = publisher(config) if broker_reachable(config) else None
    if dispatch is None:
        print(f"note: the broker at {config.amqp_uri} is not reachable; the outcome waits "
              "in the outbox until the ingest service publishes it", file=sys.stderr)
    progress = ProgressLine()
    source = STATES[args.state].ingest_service

    def report(phase: str, done: int, total: int | None) -> None:
        progress(phase, done, total)
        if dispatch is not None:
            dispatch(source, IMPORT_PROGRESS, {"import_id": import_id, "state": args.state,
                                               "phase": phase, "done": done, "total": total})

    outcome = run_import(request, config, report)
    progress.finish()
    if dispatch is not None:
        engine = make_engine(config)
        outbox.relay(engine, dispatch)
        engine.dispose()
    payload = outcome["payload"]
    if outcome["event"] == "dataset_loaded":
        counts = ", ".join(f"{name} {count:,}" for name, count in payload["counts"].items())
        print(f"import {import_id} loaded: {counts}")
        print(f"rejected lines: {payload['rejected_rows']:,} (see {payload['rejects_file']})")
        if payload["new_agencies"]:
            listed = write_new_agencies(payload)
            print(f"new agencies: {len(payload['new_agencies']):,} (listed in {listed})")
        return 0
    print(f"import {import_id} failed during {payload['phase']}: {payload['error']}",
          file=sys.stderr)
    return 1


def write_new_agencies(payload: dict):
    """new_agencies.csv beside the import's rejects.csv (id,name): a real
    release brings hundreds, more than a line of the terminal can hold."""
    import csv
    from pathlib import Path

    path = Path(payload["rejects_file"]).with_name("new_agencies.csv")
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name"])
        writer.writerows([agency["id"], agency["name"]] for agency in payload["new_agencies"])
    return path


if __name__ == "__main__":
    sys.exit(main())
