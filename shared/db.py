"""Database engines and connections.

SQLAlchemy engines serve ordinary queries; bulk loading needs a raw psycopg2
connection for COPY, taken from the same URL.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from contextlib import contextmanager

import psycopg2
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from shared.config import Config

# The gateway reads the state, stats and census schemas with this role and
# never writes (ARCHITECTURE.md).
READER_ROLE = "odp_reader"

log = logging.getLogger(__name__)


def sqlalchemy_url(database_url: str):
    """The URL with the psycopg2 driver named: `postgresql://` alone means
    psycopg 3 to SQLAlchemy 2.1, and the platform is built on psycopg2."""
    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return url


def make_engine(config: Config, url: str | None = None, **options) -> Engine:
    """An engine on `url` (default DATABASE_URL), pinging pooled connections."""
    options.setdefault("pool_pre_ping", True)
    return create_engine(sqlalchemy_url(url or config.database_url), **options)


def psycopg2_dsn(database_url: str) -> str:
    """A libpq connection string for a SQLAlchemy-style URL."""
    url = make_url(database_url)
    parts = {
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        "host": url.host,
        "port": url.port,
    }
    parts.update(url.query)
    return " ".join(f"{key}='{value}'" for key, value in parts.items() if value)


@contextmanager
def raw_connection(config: Config, application_name: str = "odp"):
    """A plain psycopg2 connection (COPY needs one), closed on exit."""
    conn = psycopg2.connect(psycopg2_dsn(config.database_url),
                            application_name=application_name)
    try:
        yield conn
    finally:
        conn.close()


def advisory_key(name: str) -> int:
    """A stable 63-bit key for pg_advisory_lock from a name such as 'ingest:nc'."""
    return zlib.crc32(name.encode()) | (0x0D0 << 32)


def schema_exists(conn, schema: str) -> bool:
    return bool(conn.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}
    ).scalar())


# Readers hold an ACCESS SHARE lock on each table they read until their
# transaction ends, taking the tables in whatever order their statements (and
# plans) name them; the swap needs an ACCESS EXCLUSIVE lock on each live table.
# A swap that locked as it went (drop, rename, next table) could hold one table
# while waiting for another that a reader holds, the reader then asking for the
# first: a cycle, and PostgreSQL kills one side (a reader's 503, or the refresh).
#
# So the swap takes every lock before it changes anything, in one LOCK statement
# (in the order given), which may wait at most SWAP_LOCK_WAIT and always less
# than half of deadlock_timeout; when it times out, its savepoint gives back
# what it took, and it tries again after a pause. Why no reader can be a
# deadlock victim: readers only take ACCESS SHARE locks, which conflict with
# nothing but the swap's ACCESS EXCLUSIVE ones, so every wait-for cycle passes
# through a swap that is waiting; the swap waits only inside that statement
# (once it holds every lock, the drops and renames wait for no reader). A
# reader can only start waiting for the swap after the statement started, and
# PostgreSQL looks for a cycle only once a wait has lasted deadlock_timeout: by
# then the statement has ended (timed out, its locks released, or done, the
# swap no longer waiting), so there is no cycle to find; and the swap's own
# wait never lasts deadlock_timeout. A long reader makes the swap wait and try
# again, never a reader fail; readers queued behind the swap wait at most
# SWAP_LOCK_WAIT. The swap commits with the rest of the caller's transaction,
# so readers still see the previous tables until then, never a mix.
SWAP_LOCK_WAIT = 0.2
SWAP_ATTEMPTS = 300
SWAP_PAUSE = (0.02, 1.0)  # the first pause, doubled each attempt up to the second
QUERY_CANCELED = "57014"  # statement_timeout's SQLSTATE


def lock_for_swap(conn, tables: list[str]) -> None:
    """ACCESS EXCLUSIVE locks on the live `tables` that exist, all at once, in
    the caller's transaction (see above)."""
    existing = [table for table in tables
                if conn.exec_driver_sql(f"SELECT to_regclass('{table}')").scalar() is not None]
    if not existing:
        return
    deadlock_ms = conn.exec_driver_sql(
        "SELECT setting::integer FROM pg_settings WHERE name = 'deadlock_timeout'").scalar()
    wait_ms = max(1, min(int(SWAP_LOCK_WAIT * 1000), deadlock_ms // 2))
    previous = conn.exec_driver_sql("SHOW statement_timeout").scalar()
    pause = SWAP_PAUSE[0]
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        savepoint = conn.begin_nested()
        try:
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {wait_ms}")
            conn.exec_driver_sql(f"LOCK TABLE {', '.join(existing)} IN ACCESS EXCLUSIVE MODE")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{previous}'")
        except OperationalError as error:
            savepoint.rollback()
            if getattr(error.orig, "pgcode", None) != QUERY_CANCELED:
                raise
        else:
            savepoint.commit()
            if attempt > 1:
                log.info("locked %s for the swap once %d attempt(s) gave way to readers",
                         ", ".join(existing), attempt - 1)
            return
        # Jittered, so that the next attempt does not fall in step with the
        # same readers again.
        time.sleep(pause * random.uniform(0.5, 1.0))
        pause = min(pause * 2, SWAP_PAUSE[1])
    raise RuntimeError(f"readers held {', '.join(existing)} through {SWAP_ATTEMPTS} "
                       "attempts to lock them for the swap")


# SQLSTATEs of a server going away: connection exceptions (class 08) and
# operator intervention that ends sessions (admin or crash shutdown, not
# accepting connections yet). A statement timeout, a deadlock or a full disk
# (OperationalError too) is not an outage.
SERVER_GONE = ("57P01", "57P02", "57P03")


def connection_lost(error: BaseException) -> str | None:
    """What the database said when `error` (or what caused it) is its
    connection lost or refused (PostgreSQL restarted, stopped, unreachable):
    an outage, not a fault of the data or the code. None otherwise. The
    deepest such error says most ("terminating connection due to
    administrator command", where the last one says "invalid socket")."""
    seen, said = set(), None
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _is_lost(error):
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()
            said = detail[0] if detail else type(error).__name__
        error = error.__cause__ or error.__context__
    return said


def _is_lost(error: BaseException) -> bool:
    if isinstance(error, exc.DisconnectionError):
        return True
    if isinstance(error, exc.DBAPIError):
        return bool(error.connection_invalidated) or (
            error.orig is not None and _is_lost(error.orig))
    if isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError):
        # No SQLSTATE: the client's own word that the socket is gone.
        code = error.pgcode
        return code is None or code.startswith("08") or code in SERVER_GONE
    return False
