"""The import worker: one process per import, outside the eventlet hub.

The nameko service starts `python -m services.ingest.worker`, writes the
request as JSON on its standard input and reads JSON lines back:

    {"progress": {"phase": "load Stop.txt", "done": 1048576, "total": 228000000}}
    {"outcome": {"event": "dataset_loaded", "payload": {...}}}
    {"outcome": {"event": "dataset_loaded", "payload": {...}, "replayed": true}}

The last form answers a request of an import that had already ended (a
redelivery): its earlier outcome, which the service does not count again.

A separate process keeps the service's broker heartbeats flowing during a
long import and gives the pipeline an ordinary (not green) psycopg2, which
COPY needs. Logs go to standard error.
"""

from __future__ import annotations

import json
import sys

from services.ingest.errors import database_lost
from services.ingest.pipeline import run_import
from shared.config import Config
from shared.logs import setup_logging
from shared.states import load_state_packages


def main() -> int:
    config = Config.from_env()
    setup_logging(config.log_level, log_format=config.log_format)
    load_state_packages(config.state_packages, "ingest")
    request = json.loads(sys.stdin.read())
    out = sys.stdout
    reading = [True]

    def tell(message: dict) -> None:
        # The service that started this worker may be gone (killed, or its
        # container stopped): the import still ends, and reports its outcome
        # through the outbox, which the next service relays. A progress
        # line nobody reads must not fail it.
        if not reading[0]:
            return
        try:
            out.write(json.dumps(message) + "\n")
            out.flush()
        except OSError:
            reading[0] = False

    def report(phase: str, done: int, total: int | None) -> None:
        tell({"progress": {"phase": phase, "done": done, "total": total}})

    try:
        outcome = run_import(request, config, report)
    except Exception as error:
        # Not even the failure could be recorded: the service records it,
        # in words a person can act on where there are some.
        tell({"error": database_lost(error) or f"{type(error).__name__}: {error}"})
        raise
    tell({"outcome": outcome})
    return 0


if __name__ == "__main__":
    sys.exit(main())
