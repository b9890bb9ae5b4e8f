"""Database engines and connections.

SQLAlchemy engines serve ordinary queries; bulk loading needs a raw psycopg2
connection for COPY, taken from the same URL.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager

import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from shared.config import Config

# The gateway reads the state, stats and census schemas with this role and
# never writes (ARCHITECTURE.md).
READER_ROLE = "odp_reader"


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
