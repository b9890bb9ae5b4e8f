"""Create the database and roles and run the migrations: `odp db setup`.

Idempotent, so `make run` and `make test` call it every time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg2
from alembic import command
from alembic.config import Config as AlembicConfig
from psycopg2 import sql
from sqlalchemy.engine import make_url

from shared.config import Config
from shared.db import READER_ROLE, psycopg2_dsn

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def ensure_database(config: Config) -> bool:
    """Create the configured database when missing. True when it was created."""
    url = make_url(config.database_url)
    maintenance = psycopg2.connect(psycopg2_dsn(str(url.set(database="postgres"))))
    maintenance.autocommit = True
    try:
        with maintenance.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{url.database}"')
            log.info("created database %s", url.database)
            return True
    finally:
        maintenance.close()


ROLE_LOCK = 0x6F6470726F6C65  # "odprole"


def ensure_roles(config: Config) -> None:
    """The reader role, which the migrations grant SELECT to, and the
    gateway's login into it (READER_DATABASE_URL: the role itself, or a
    login that is a member of it), with that URL's password when it has
    one. Every transaction of the reader is read-only by default."""
    reader = make_url(config.reader_url())
    if not reader.username:
        # libpq would log in as the operating system's user, perhaps the
        # owner: the gateway must name its login.
        raise ValueError("READER_DATABASE_URL names no user: write the gateway's login, "
                         f"for example postgresql://{READER_ROLE}:PASSWORD@host/database")
    login = reader.username
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # Roles belong to the whole cluster: two setups at once (two test
            # workers) take turns here, or both would try to create it.
            cur.execute("SELECT pg_advisory_lock(%s)", (ROLE_LOCK,))
            for role in dict.fromkeys((READER_ROLE, login)):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if not cur.fetchone():
                    cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                    log.info("created role %s", role)
                cur.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on")
                            .format(sql.Identifier(role)))
            if login != READER_ROLE:
                cur.execute(sql.SQL("GRANT {} TO {}").format(
                    sql.Identifier(READER_ROLE), sql.Identifier(login)))
            if reader.password:
                cur.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s")
                            .format(sql.Identifier(login)), (reader.password,))
    finally:
        conn.close()


def grant_reader_version(config: Config) -> None:
    """The reader may read the schema's version: the gateway's start waits
    on it (`odp db wait --reader`) with the gateway's own login."""
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"GRANT SELECT ON alembic_version TO {READER_ROLE}")
    finally:
        conn.close()


def _scripts():
    from alembic.script import ScriptDirectory

    alembic_config = AlembicConfig(str(ROOT / "alembic.ini"))
    alembic_config.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(alembic_config)


def head_revision() -> str:
    """The newest migration of this code base."""
    return _scripts().get_current_head()


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def current_revision(database_url: str) -> str | None:
    """The database's migration; None when it has none yet."""
    conn = psycopg2.connect(psycopg2_dsn(database_url), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def wait_for_schema(database_url: str, timeout: float, say=print, interval: float = 2.0) -> bool:
    """Wait until the database's schema is at this code's head (the migrate
    Job has run) or newer: True when it is, False after `timeout` seconds. A
    container's start waits here, so new code never meets an old schema; a
    newer one (a revision this code does not know: a rollback after the
    next release migrated) is accepted, or a rolled-back pod could never
    start; that rollback works as far as the migrations keep what older code
    reads (add first, remove a release later)."""
    import time

    head = head_revision()
    known = known_revisions()
    deadline = time.monotonic() + timeout
    last_said = None
    while True:
        try:
            current = current_revision(database_url)
            why = f"the schema is at {current or 'no migration'}, this code needs {head}"
        except psycopg2.Error as error:
            current = None
            why = f"the database does not answer ({str(error).strip().splitlines()[0]})"
        if current == head:
            say(f"database schema at {head}")
            return True
        if current is not None and current not in known:
            say(f"database schema at {current}, newer than this code's {head}: going on")
            return True
        if time.monotonic() >= deadline:
            say(f"gave up after {timeout:.0f} s: {why}")
            return False
        if why != last_said:
            say(f"waiting: {why}")
            last_said = why
        time.sleep(interval)


def migrate(config: Config, revision: str = "head") -> None:
    alembic_config = AlembicConfig(str(ROOT / "alembic.ini"))
    alembic_config.set_main_option("script_location", str(ROOT / "migrations"))
    alembic_config.attributes["database_url"] = config.database_url
    command.upgrade(alembic_config, revision)


def setup(config: Config) -> None:
    ensure_database(config)
    ensure_roles(config)
    migrate(config)
    grant_reader_version(config)
