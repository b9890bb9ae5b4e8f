"""The gateway reads with a login of its own that can only read, and the
services wait for the schema their code needs.

The gateway faces the internet: whatever a request makes it run, its
database connection must not be able to write, nor to become a role that
can (the owner's credentials never reach it).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.gateway.backends import build_deps
from shared.db import READER_ROLE, psycopg2_dsn
from shared.dbsetup import ensure_roles, head_revision, wait_for_schema
from tests.conftest import drop_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gateway_engine(config):
    deps = build_deps(config)
    yield deps.engine
    deps.close()


@contextmanager
def scratch_database():
    """An empty database of the test's own: its URL; dropped after."""
    name = f"odp_wait_{uuid.uuid4().hex[:8]}"
    maintenance = psycopg2.connect(psycopg2_dsn("postgresql:///postgres"))
    maintenance.autocommit = True
    with maintenance.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    maintenance.close()
    try:
        yield f"postgresql:///{name}"
    finally:
        drop_database(name)


def owner(config) -> str:
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]
    finally:
        conn.close()


def refused(engine, statement: str) -> str:
    """The database's refusal of `statement` on the gateway's connection."""
    with engine.connect() as conn:
        with pytest.raises(DBAPIError) as refusal:
            conn.execute(text(statement))
        return str(refusal.value.orig)


def test_the_gateway_logs_in_as_the_reader_not_as_the_owner(config, gateway_engine):
    with gateway_engine.connect() as conn:
        users = conn.execute(text("SELECT current_user, session_user")).one()

    assert tuple(users) == (READER_ROLE, READER_ROLE)
    assert owner(config) != READER_ROLE


def test_the_gateways_connection_cannot_write(gateway_engine, db):
    assert "read-only transaction" in refused(
        gateway_engine, "INSERT INTO stats.generations (state, generation) VALUES ('zz', 1)")
    assert "read-only transaction" in refused(gateway_engine, "CREATE SCHEMA gateway_was_here")


def test_the_reader_cannot_write_even_with_read_only_turned_off(config, db):
    # Read-only by the login's own rights, not only by a session setting
    # that a statement could turn off.
    conn = psycopg2.connect(psycopg2_dsn(config.reader_url()))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
            for statement in ("INSERT INTO stats.generations (state, generation) "
                              "VALUES ('zz', 1)", "CREATE SCHEMA gateway_was_here",
                              "DELETE FROM stats.facts"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        conn.close()


def test_the_gateways_connection_cannot_become_another_role(config, gateway_engine):
    refusal = refused(gateway_engine, f'SET ROLE "{owner(config)}"')

    assert "permission denied to set role" in refusal


def test_setup_gives_the_reader_login_its_password_and_read_only_default(config):
    login = f"odp_gateway_{uuid.uuid4().hex[:8]}"
    reader = config.with_changes(
        reader_database_url=f"postgresql://{login}:s3cret-{login}@127.0.0.1/odp")
    ensure_roles(reader)
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolcanlogin, rolpassword IS NOT NULL, "
                        "(SELECT rolconfig FROM pg_roles WHERE rolname = %s) "
                        "FROM pg_authid WHERE rolname = %s", (login, login))
            can_login, has_password, settings = cur.fetchone()
            cur.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (login, READER_ROLE))
            reads = cur.fetchone()[0]
            cur.execute("SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'MEMBER') "
                        "AND rolname NOT IN (%s, %s)", (login, login, READER_ROLE))
            other_roles = [row[0] for row in cur.fetchall()]
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{login}"')
        conn.close()

    assert can_login and has_password and reads
    assert settings == ["default_transaction_read_only=on"]
    assert other_roles == [], "the gateway's login may become no role but the reader"


def test_db_wait_returns_at_once_on_a_migrated_database(config, db):
    said = []

    assert wait_for_schema(config.database_url, timeout=5, say=said.append)
    assert said == [f"database schema at {head_revision()}"]
    # The gateway waits with its own login.
    assert wait_for_schema(config.reader_url(), timeout=5, say=said.append)


def test_setup_applies_the_urls_password_each_time(config):
    login = f"odp_gateway_{uuid.uuid4().hex[:8]}"

    def verifier(password: str) -> str:
        ensure_roles(config.with_changes(
            reader_database_url=f"postgresql://{login}:{password}@127.0.0.1/odp"))
        conn = psycopg2.connect(psycopg2_dsn(config.database_url))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (login,))
                return cur.fetchone()[0]
        finally:
            conn.close()

    try:
        first, second = verifier("first-secret"), verifier("second-secret")
    finally:
        conn = psycopg2.connect(psycopg2_dsn(config.database_url))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{login}"')
        conn.close()

    assert first.startswith("SCRAM-SHA-256$") and second.startswith("SCRAM-SHA-256$")
    assert first != second, "a changed password in READER_DATABASE_URL was not applied"


def test_a_reader_url_without_a_user_is_refused(config):
    # libpq would log in as the system's user, perhaps the owner.
    result = subprocess.run(
        [sys.executable, "-m", "odp", "db", "setup"], cwd=ROOT,
        env={**config.as_environ(), "READER_DATABASE_URL": "postgresql://127.0.0.1/odp"},
        capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert "READER_DATABASE_URL names no user" in result.stderr


def test_db_wait_accepts_a_schema_newer_than_the_code(config, db):
    # A rollback after the next release migrated: the older pods must start.
    with scratch_database() as url:
        conn = psycopg2.connect(psycopg2_dsn(url))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            cur.execute("INSERT INTO alembic_version VALUES ('0099_from_the_future')")
        said = []
        newer = wait_for_schema(url, timeout=1, say=said.append)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE alembic_version SET version_num = '{first_revision()}'")
        conn.close()
        older = wait_for_schema(url, timeout=1, say=said.append, interval=0.2)

    assert newer and said[0] == (f"database schema at 0099_from_the_future, newer than "
                                 f"this code's {head_revision()}: going on")
    assert not older, "an older schema must keep the container waiting"


def first_revision() -> str:
    from shared.dbsetup import known_revisions

    revisions = sorted(known_revisions())
    return revisions[0]


def test_db_wait_gives_up_naming_what_it_waits_for(config, db):
    with scratch_database() as url:
        result = subprocess.run(
            [sys.executable, "-m", "odp", "db", "wait", "--timeout", "1"], cwd=ROOT,
            env={**config.as_environ(), "DATABASE_URL": url},
            capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert (f"gave up after 1 s: the schema is at no migration, this code needs "
            f"{head_revision()}") in result.stdout
