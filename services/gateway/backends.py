"""The gateway's outside resources, built from the config: a read-only
database engine, a memcached client and the admin service's RPC client,
plus the readiness probes of database, broker and cache.

The engine logs in as the reader (READER_DATABASE_URL, or the reader role
on DATABASE_URL's server): a login that can only read and that is a member
of no other role, so no code path of the gateway can write or become
another role, and the gateway never holds the owner's credentials.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pymemcache.client.base import Client as MemcacheClient
from pymemcache.client.hash import HashClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.gateway.admin_rpc import AdminClient
from shared.config import Config
from shared.db import make_engine
from shared.nameko_support import check_broker as check_broker_answers

log = logging.getLogger(__name__)

# Short waits everywhere: a backing service that does not answer at once is
# reported down (503) or skipped (cache) rather than holding a worker.
DATABASE_CONNECT_TIMEOUT = 3
CACHE_TIMEOUT = 0.25
CACHE_DEAD_SECONDS = 10
BROKER_TIMEOUT = 2.0


@dataclass
class Deps:
    engine: Engine
    cache: Any  # get(key) / set(key, value, expire) like pymemcache's clients
    admin: Any = None  # call(method, *args) like admin_rpc.AdminClient

    def close(self) -> None:
        self.engine.dispose()
        self.cache.close()
        if self.admin is not None:
            self.admin.close()


def reader_engine(config: Config) -> Engine:
    # Read-only transactions on top of the login's own rights: a second
    # lock on the door, which costs nothing.
    return make_engine(config, config.reader_url(), connect_args={
        "connect_timeout": DATABASE_CONNECT_TIMEOUT,
        "options": "-c default_transaction_read_only=on"})


def cache_client(config: Config) -> HashClient:
    # ignore_exc makes an unreachable server a cache miss, and dead servers
    # are skipped for a while instead of costing a timeout on every request.
    return HashClient(list(config.memcached_servers), connect_timeout=CACHE_TIMEOUT,
                      timeout=CACHE_TIMEOUT, ignore_exc=True, retry_attempts=1,
                      dead_timeout=CACHE_DEAD_SECONDS, use_pooling=True,
                      # Sets are not waited for; without TCP_NODELAY the next
                      # command on the connection stalls ~40 ms behind them.
                      no_delay=True)


def build_deps(config: Config) -> Deps:
    return Deps(engine=reader_engine(config), cache=cache_client(config),
                admin=AdminClient(config))


def check_database(deps: Deps, config: Config) -> None:
    with deps.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_broker(deps: Deps, config: Config) -> None:
    check_broker_answers(config.amqp_uri, BROKER_TIMEOUT)


def check_cache(deps: Deps, config: Config) -> None:
    """Every configured server must answer: the hashing client spreads keys
    over all of them, so one down server is a cache partly down."""
    for server in config.memcached_servers:
        host, _, port = server.rpartition(":")
        client = MemcacheClient((host, int(port)), connect_timeout=CACHE_TIMEOUT,
                                timeout=CACHE_TIMEOUT)
        try:
            client.version()
        finally:
            client.close()


READINESS_CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
}
# What the gateway cannot serve without: the others make it degraded, not
# unready (the public pages need neither the cache nor the broker).
REQUIRED = frozenset({"database"})
