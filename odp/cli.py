"""`odp`: the platform's command line for operators and development.

    odp db setup                        create the database and roles, migrate
    odp ingest nc --url URL [--dest DIR] [--min-stop-id A --max-stop-id B]
    odp facts STATE                     a state's landing-page facts
    odp run                             the whole stack, as `make run` starts it
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid

from shared.config import Config
from shared.logs import setup_logging
from shared.states import STATES

log = logging.getLogger("odp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odp", description="Open Data Policing: operate and develop the platform.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database setup")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser(
        "setup", help="create the database and roles if missing and run the migrations")

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

    facts = commands.add_parser(
        "facts", help="print a state's landing-page facts (from the public API at ODP_URL)")
    facts.add_argument("state", choices=sorted(STATES))

    commands.add_parser(
        "run", help="run every service, supervised, and load the sample releases",
        description="What `make run` starts: the services in one supervised process "
                    "group, with the bundled sample releases imported through the bus.")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = Config.from_env()
    setup_logging(config.log_level)
    if args.command == "db":
        from shared.dbsetup import setup

        setup(config)
        print(f"database ready: {config.database_url}")
        return 0
    if args.command == "ingest":
        return ingest(args, config)
    if args.command == "facts":
        from odp.facts import fetch_facts, format_facts

        try:
            print(format_facts(fetch_facts(config.odp_url, args.state)))
        except (RuntimeError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if args.command == "run":
        from odp.stack import run_stack

        return run_stack(config)
    return 2


def ingest(args, config: Config) -> int:
    from odp.progress import ProgressLine
    from services.ingest.pipeline import run_import
    from shared import outbox
    from shared.db import make_engine
    from shared.events import IMPORT_PROGRESS
    from shared.nameko_support import broker_reachable, publisher

    if args.state != "nc" and (args.min_stop_id is not None or args.max_stop_id is not None):
        print("--min-stop-id and --max-stop-id apply to nc only", file=sys.stderr)
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
            print("new agencies: " + ", ".join(f"{agency['name']} (id {agency['id']})"
                                                for agency in payload["new_agencies"]))
        return 0
    print(f"import {import_id} failed during {payload['phase']}: {payload['error']}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
