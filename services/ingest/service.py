"""The ingest services: `ingest_nc`, `ingest_md`, `ingest_il`, one per state
of STATES, all run by `python -m services.ingest`.

On `import_requested` for its state (routed to its queue alone by the key
`import_requested.<state>`: import_handler) the service runs the pipeline in a
worker process (services/ingest/worker.py), turns the worker's progress
lines into `import_progress` events, and publishes the outcome the pipeline
wrote to the outbox (`dataset_loaded` or `dataset_failed`). A timer relays
anything left in the outbox, such as the outcome of an import run from the
command line while the broker was down.

    {"import_id": "42", "state": "nc", "url": "ftp://nc.us/"}
"""

from __future__ import annotations

import json
import logging
import sys
import time

from eventlet.green import subprocess
from nameko.events import EventDispatcher
from nameko.timer import timer
from sqlalchemy import delete

from services.ingest.orphans import fail_orphaned_runs
from services.ingest.pipeline import fail_unfinished
from shared import metrics
from shared.events import (
    ADMIN_SOURCE,
    IMPORT_HANDLER,
    IMPORT_PROGRESS,
    IMPORT_REQUESTED,
    STOP_REASONS_UPDATED,
    ImportRequested,
    StopReasonsUpdated,
    ValidationError,
    import_routing_key,
)
from shared.nameko_support import Database, OutboxRelay, Settings
from shared.retrying import Malformed, retrying_event_handler
from shared.states import STATES, State
from shared.tables import ingest_applied_updates, ingest_md_stop_reasons
from shared.tables import outbox as ingest_outbox
from shared.updates import is_newest

log = logging.getLogger(__name__)

WORKER = [sys.executable, "-m", "services.ingest.worker"]


class IngestService(OutboxRelay):
    """Base of the per-state services; a subclass names its state."""

    name = "ingest"
    state = ""
    outbox_table = ingest_outbox

    config = Settings()
    db = Database()
    dispatch = EventDispatcher()

    def load_release(self, payload: dict) -> None:
        """An import request of this state; service_for makes it the handler.

        A request whose failure cannot even be recorded (the database is
        down) is tried again by the platform's retry policy
        (shared/retrying.py); a run left `running` meanwhile is ended by
        fail_orphans."""
        # Only this state's requests are routed here, but a request published
        # before the routing by state (plain `import_requested`) was copied
        # into every state's queue, and may still wait there after an upgrade.
        if payload.get("state") != self.state:
            return
        try:
            request = ImportRequested().load(payload)
        except ValidationError as error:
            raise Malformed(f"import_requested: {error.messages}") from None
        log.info("import %s requested: %s", request["import_id"], request["url"])
        try:
            failure = self._run_worker(request)
        except Exception as error:  # nameko would ack and forget: record a failure
            log.exception("import %s: the worker could not be run", request["import_id"])
            metrics.count_import(self.state, None)
            failure = ("worker", f"the import could not be run: {type(error).__name__}: "
                                 f"{error}")
        if failure:
            self._record_failure(request, *failure)
        self.publish_now()

    def _record_failure(self, request: dict, phase: str, message: str) -> None:
        try:
            fail_unfinished(self.config, request, phase, message)
        except Exception:
            log.exception("import %s: could not record the failure", request["import_id"])
            raise

    @timer(interval=15, eager=True)
    def fail_orphans(self) -> None:
        """A run of this state recorded as `running` that no worker holds (its
        worker and this service were both stopped, or its failure could not
        be recorded) is ended as failed: its data never went live."""
        for import_id in fail_orphaned_runs(self.db, self.config, self.state):
            log.warning("import %s: its worker is gone; recorded as failed", import_id)
        self.publish_now()

    def _progress(self, request: dict, progress: dict) -> None:
        """Progress is for people watching; an import goes on without it.
        Raising here (the broker is away) would leave the worker running
        unread, and its outcome unreported, while the import is recorded
        as failed."""
        try:
            self.dispatch(IMPORT_PROGRESS, {"import_id": request["import_id"],
                                            "state": self.state, **progress})
        except Exception as error:
            log.warning("import %s: progress not published (%s: %s)", request["import_id"],
                        type(error).__name__, error)

    def _run_worker(self, request: dict) -> tuple[str, str] | None:
        """Run the import in a worker process; (phase, message) when the worker
        died without recording an outcome."""
        process = subprocess.Popen(
            WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=self.config.as_environ())
        started = time.monotonic()
        process.stdin.write(json.dumps(request).encode())
        process.stdin.close()
        phase = "start"
        outcome = None
        said = None
        for raw in process.stdout:
            message = json.loads(raw)
            progress = message.get("progress")
            if progress:
                phase = progress["phase"]
                self._progress(request, progress)
            elif "outcome" in message:
                outcome = message["outcome"]
            elif "error" in message:
                said = message["error"]
        code = process.wait()
        # The outcome the pipeline reported, or a failure when it reported none;
        # a replayed one (the import had already ended) is not counted again.
        metrics.count_import(self.state, outcome, time.monotonic() - started)
        if outcome is not None and outcome.get("replayed"):
            log.info("import %s had already ended (%s): not loaded or counted again",
                     request["import_id"], outcome["event"])
        if code != 0 and said:
            return phase, f"the import worker stopped during {phase}: {said}"
        if code != 0:
            return phase, (f"the import worker stopped unexpectedly during {phase} "
                           f"(exit code {code}); see the ingest service's log")
        return None


class StopReasonsTable:
    """What an ingest service whose state keeps a stop-reason table (md) adds."""

    @retrying_event_handler(ADMIN_SOURCE, STOP_REASONS_UPDATED)
    def apply_stop_reasons(self, payload: dict) -> None:
        """Keep the operators' stop-reason table; the next md import applies it."""
        try:
            update = StopReasonsUpdated().load(payload)
        except ValidationError as error:
            raise Malformed(f"stop_reasons_updated: {error.messages}") from None
        with self.db.begin() as conn:
            if not is_newest(conn, ingest_applied_updates, "md_stop_reasons", "md",
                             update["updated_at"]):
                log.info("ignoring older md stop reasons (%s)", update["updated_at"])
                return
            conn.execute(delete(ingest_md_stop_reasons))
            if update["rows"]:
                conn.execute(ingest_md_stop_reasons.insert(), update["rows"])
        log.info("md stop reasons replaced: %d stems", len(update["rows"]))


def import_handler(state: State):
    """`load_release` of `ingest_<code>`: a handler of admin's
    `import_requested` whose queue (nameko's name,
    evt-admin-import_requested--ingest_<code>.load_release, which admin
    declares and KEDA watches) is bound with the state's routing key
    `import_requested.<code>`: it gets this state's requests only."""
    def load_release(self, payload: dict) -> None:
        IngestService.load_release(self, payload)

    load_release.__name__ = load_release.__qualname__ = IMPORT_HANDLER
    return retrying_event_handler(ADMIN_SOURCE, IMPORT_REQUESTED,
                                  routing_key=import_routing_key(state.code))(load_release)


def service_for(state: State) -> type[IngestService]:
    """`ingest_<code>`, the service of one state's imports."""
    bases = (StopReasonsTable, IngestService) if state.has_stop_reasons else (IngestService,)
    return type(f"Ingest{state.code.upper()}", bases,
                {"name": state.ingest_service, "state": state.code,
                 IMPORT_HANDLER: import_handler(state), "__module__": __name__})


# One service per state of STATES, built when this module is imported: a
# state package must be loaded first (see services/ingest/__main__.py).
SERVICES = tuple(service_for(state) for state in STATES.values())
