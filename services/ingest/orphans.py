"""Runs recorded as `running` that no worker is doing any more.

A worker holds its state's import lock (pipeline.run_import) from before it
records its run until the run ends, so a `running` run whose state lock
nobody holds has no worker: the worker and its service were both stopped,
or the service could not record the worker's death (the database was
away). Its data never went live (going live and recording `loaded` are one
transaction), so it is ended as failed, which admin then follows. A
redelivered request of that import finds it ended and does not load it.
"""

from __future__ import annotations

from sqlalchemy import select, text

from services.ingest.pipeline import fail_unfinished_holding_lock, state_lock_key
from shared.config import Config
from shared.tables import import_runs

MESSAGE = ("the import's worker stopped before the import ended (the ingest service was "
           "stopped, or lost the database, during the import); the data being served did "
           "not change; request the import again")


def fail_orphaned_runs(engine, config: Config, state: str) -> list[str]:
    """End `state`'s orphaned runs as failed; their import ids."""
    with engine.begin() as conn:
        # Held until this transaction ends: no worker can start or record a
        # run of the state meanwhile, so none is failed under its feet.
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                            {"key": state_lock_key(state)}).scalar():
            return []
        orphans = conn.execute(select(import_runs.c.import_id, import_runs.c.url)
                               .where(import_runs.c.state == state,
                                      import_runs.c.status == "running")).all()
        for orphan in orphans:
            fail_unfinished_holding_lock(engine, config, {
                "import_id": orphan.import_id, "state": state, "url": orphan.url},
                "worker", MESSAGE)
    return [orphan.import_id for orphan in orphans]
