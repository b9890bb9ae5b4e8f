"""The `stats` service: on `dataset_loaded` it rebuilds the state's summaries
and facts (services/stats/refresh.py) and publishes `stats_refreshed`.

    {"state": "nc", "generation": 7, "data_version": 42, "import_id": "42", ...}
"""

from __future__ import annotations

import logging

from nameko.events import event_handler
from nameko.timer import timer
from sqlalchemy import select

from services.stats.priming import prime
from services.stats.refresh import refresh
from shared import outbox
from shared.events import DATASET_LOADED, DatasetLoaded, ValidationError
from shared.nameko_support import Database, Settings, publisher
from shared.tables import facts, stats_outbox

log = logging.getLogger(__name__)


class StatsService:
    name = "stats"

    config = Settings()
    db = Database()

    @event_handler("ingest_nc", DATASET_LOADED, requeue_on_error=True)
    def refresh_nc(self, payload: dict) -> None:
        self._refresh(payload)

    def _refresh(self, payload: dict) -> None:
        try:
            loaded = DatasetLoaded().load(payload)
        except ValidationError as error:
            log.error("ignoring a malformed dataset_loaded %s: %s", payload, error.messages)
            return
        log.info("%s data version %s loaded (import %s); refreshing", loaded["state"],
                 loaded["data_version"], loaded["import_id"])
        refreshed = refresh(self.db, loaded["state"], loaded["data_version"])
        if refreshed is not None:
            self._prime(loaded["state"])
        try:
            self.relay_outbox()
        except Exception:  # stays in the outbox; the timer sends it
            log.exception("could not publish the outbox now")

    def _prime(self, state: str) -> None:
        with self.db.connect() as conn:
            state_facts = conn.execute(select(facts.c.facts)
                                       .where(facts.c.state == state)).scalar()
        top = [agency["id"] for agency in state_facts["top_agencies"]]
        answered = prime(self.config.odp_url, state, top)
        log.info("%s: %d pages of the %d largest agencies cached", state, answered, len(top))

    @timer(interval=10, eager=True)
    def relay_outbox(self) -> None:
        sent = outbox.relay(self.db, publisher(self.config), table=stats_outbox)
        if sent:
            log.info("published %d event(s) from the outbox", sent)


SERVICES = (StatsService,)
