"""The current stats generation of each state, as this gateway process
knows it: read from PostgreSQL at most once per `ttl` seconds per state.

Every request of a state needs its generation (the cache key and the ETag
carry it). Reading it from PostgreSQL on every request made a cache hit
cost a database round trip (and the pool's ping); remembered for a second,
a hit costs one memcached get, and a 304 nothing but this lookup.

What it allows: for up to `ttl` seconds after a refresh commits, a process
may still answer from the previous generation, always a whole release
(keys and ETags name the generation; the previous release's cached
answers are still there). The stats service waits that long before it
warms the cache (services/stats/priming.py), so it warms the new one.

While PostgreSQL is down, the last generation seen is kept: answers
already cached go on being served, and only misses fail (503).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from services.gateway import queries

log = logging.getLogger(__name__)


class Generations:
    def __init__(self, engine, ttl: float = 1.0, clock=time.monotonic):
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self.seen: dict[str, tuple[queries.Generation | None, float]] = {}

    def current(self, state: str) -> queries.Generation | None:
        """The state's generation; None when it has no published numbers."""
        now = self.clock()
        known = self.seen.get(state)
        if known is not None and now - known[1] < self.ttl:
            return known[0]
        try:
            with self.engine.connect() as conn:
                generation = queries.generation(conn, state)
        except SQLAlchemyError:
            if known is None or known[0] is None:
                raise
            log.warning("%s: the database does not answer; serving generation %d as "
                        "last seen", state, known[0].number)
            return known[0]
        self.seen[state] = (generation, now)
        return generation
