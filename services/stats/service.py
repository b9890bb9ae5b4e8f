"""The `stats` service: on `dataset_loaded` it rebuilds the state's summaries
and facts (services/stats/refresh.py) and publishes `stats_refreshed`; on
`agency_mapping_updated` it keeps the new mapping, and on `census_loaded`
it republishes the agencies of every served state with their new names and
census profiles (the agency snapshot and the facts' names only: no count
changes).

    {"state": "nc", "generation": 7, "data_version": 42, "import_id": "42", ...}
"""

from __future__ import annotations

import logging
import time

from nameko.timer import timer
from sqlalchemy import delete, select

from services.stats.priming import prime
from services.stats.refresh import behind, rebuild_outdated, refresh, republish_agencies
from shared.events import (
    ADMIN_SOURCE,
    AGENCY_MAPPING_UPDATED,
    CENSUS_LOADED,
    DATASET_LOADED,
    AgencyMappingUpdated,
    DatasetLoaded,
    ValidationError,
)
from shared.nameko_support import Database, OutboxRelay, Settings, add_state_handlers
from shared.retrying import Malformed, retrying_event_handler
from shared.states import STATES
from shared.tables import (
    facts,
    generations,
    stats_agency_mappings,
    stats_applied_updates,
    stats_outbox,
)
from shared.updates import is_newest

log = logging.getLogger(__name__)


# (state, data version) -> (failed catch-ups, when to try again): per
# process, which is all a pause needs.
CATCH_UP_FAILURES: dict[tuple[str, int], tuple[int, float]] = {}


class StatsService(OutboxRelay):
    name = "stats"
    outbox_table = stats_outbox

    config = Settings()
    db = Database()

    def refresh(self, payload: dict) -> None:
        """dataset_loaded of any state's ingest service (see the handlers below)."""
        self._refresh(payload)

    def _refresh(self, payload: dict) -> None:
        try:
            loaded = DatasetLoaded().load(payload)
        except ValidationError as error:
            raise Malformed(f"dataset_loaded: {error.messages}") from None
        log.info("%s data version %s loaded (import %s); refreshing", loaded["state"],
                 loaded["data_version"], loaded["import_id"])
        refreshed = refresh(self.db, loaded["state"], loaded["data_version"])
        self._prime_and_publish([loaded["state"]] if refreshed is not None else [])

    @retrying_event_handler(ADMIN_SOURCE, AGENCY_MAPPING_UPDATED)
    def apply_agency_mapping(self, payload: dict) -> None:
        """Keep the state's new mapping and republish its numbers with it."""
        try:
            mapping = AgencyMappingUpdated().load(payload)
        except ValidationError as error:
            raise Malformed(f"agency_mapping_updated: {error.messages}") from None
        state = mapping["state"]
        with self.db.begin() as conn:
            if not is_newest(conn, stats_applied_updates, "agency_mapping", state,
                             mapping["updated_at"]):
                log.info("ignoring an older %s agency mapping (%s)", state,
                         mapping["updated_at"])
                return
            conn.execute(delete(stats_agency_mappings)
                         .where(stats_agency_mappings.c.state == state))
            if mapping["rows"]:
                conn.execute(stats_agency_mappings.insert(),
                             [{"state": state, **row} for row in mapping["rows"]])
        log.info("%s agency mapping of %d rows stored; refreshing", state, len(mapping["rows"]))
        if republish_agencies(self.db, state) is not None:
            self._prime(state)
        self.publish_now()

    @retrying_event_handler("census", CENSUS_LOADED)
    def apply_census(self, payload: dict) -> None:
        """New census profiles: republish every state's agencies with them."""
        log.info("census profiles loaded (request %s); refreshing", payload.get("request_id"))
        with self.db.connect() as conn:
            served = conn.execute(select(generations.c.state)).scalars().all()
        unknown = sorted(set(served) - set(STATES))
        if unknown:
            log.warning("numbers of states this process does not know are left as they "
                        "are: %s", ", ".join(unknown))
        republished = [state for state in (code for code in served if code in STATES)
                       if republish_agencies(self.db, state) is not None]
        self._prime_and_publish(republished)

    @timer(interval=24 * 3600, eager=True)
    def rebuild_outdated(self) -> None:
        """At start: tables published by an older version of this service are
        built again in the shape this one reads, before anyone asks."""
        rebuilt = rebuild_outdated(self.db)
        if rebuilt:
            self._prime_and_publish(rebuilt)

    @timer(interval=30)
    def catch_up(self) -> None:
        """A load whose dataset_loaded never came (dead-lettered after a long
        outage, or lost) is refreshed all the same. Never waiting on a refresh
        under way (the event's, or another replica's), and one that failed is
        tried again after a pause that doubles, up to an hour."""
        caught_up = []
        now = time.monotonic()
        for state, data_version in behind(self.db):
            failures, next_at = CATCH_UP_FAILURES.get((state, data_version), (0, 0.0))
            if now < next_at:
                continue
            log.warning("%s: data version %s is live but not refreshed; refreshing", state,
                        data_version)
            try:
                refreshed = refresh(self.db, state, data_version, wait=False)
            except Exception:
                log.exception("%s: the catch-up refresh failed", state)
                CATCH_UP_FAILURES[(state, data_version)] = (
                    failures + 1, now + min(3600.0, 30.0 * 2 ** failures))
                continue
            CATCH_UP_FAILURES.pop((state, data_version), None)
            if refreshed is not None:
                caught_up.append(state)
        if caught_up:
            self._prime_and_publish(caught_up)

    def _prime_and_publish(self, states) -> None:
        """Warm the cache of `states`, then announce the new numbers: when
        stats_refreshed arrives, the largest agencies are already cached."""
        if states:
            # Every gateway process reads the new generation within this
            # time (services/gateway/generations.py): sooner, it could answer
            # the warming requests from the previous one and leave the new
            # cold. Once for all the states.
            time.sleep(self.config.generation_ttl)
            for state in states:
                self._prime(state)
        self.publish_now()

    def _prime(self, state: str) -> None:
        with self.db.connect() as conn:
            state_facts = conn.execute(select(facts.c.facts)
                                       .where(facts.c.state == state)).scalar()
        top = [agency["id"] for agency in state_facts["top_agencies"]]
        answered = prime(self.config.odp_url, state, top)
        log.info("%s: %d pages of the %d largest agencies cached", state, answered, len(top))


# refresh_nc, refresh_md, ...: one handler per state's ingest service.
add_state_handlers(StatsService, DATASET_LOADED, StatsService.refresh)

SERVICES = (StatsService,)
