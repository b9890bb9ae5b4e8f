"""Staging schemas and the swap that makes one live.

An import builds `<state>_staging_<token>`; readers keep the live `<state>`
schema until the swap renames both in one transaction. A failed import
drops its staging schema and never touches the live one.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import text
from sqlalchemy.engine import Connection

from shared.db import READER_ROLE, lock_for_swap, schema_exists

log = logging.getLogger(__name__)

STAGING_INFIX = "_staging_"


def new_staging_name(state: str) -> str:
    return f"{state}{STAGING_INFIX}{secrets.token_hex(4)}"


def create(cursor, schema: str, tables_sql: str) -> None:
    cursor.execute(f"CREATE SCHEMA {schema}")
    cursor.execute(tables_sql.format(schema=schema))


def grant_readers(cursor, schema: str) -> None:
    cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {READER_ROLE}")
    cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {READER_ROLE}")


def drop(cursor, schema: str) -> None:
    cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def drop_leftovers(cursor, state: str) -> list[str]:
    """Drop staging schemas a crashed import left behind (call under the state's lock)."""
    cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                   (f"{state}{STAGING_INFIX}%".replace("_", r"\_"),))
    names = [row[0] for row in cursor.fetchall()]
    for name in names:
        log.warning("dropping staging schema %s left by an earlier import", name)
        drop(cursor, name)
    return names


def swap(conn: Connection, state: str, staging: str) -> None:
    """Make `staging` the live schema of `state` inside the caller's transaction."""
    conn.execute(text("SET LOCAL lock_timeout = '60s'"))
    retired = f"{state}_retired_{staging.rsplit('_', 1)[-1]}"
    had_live = schema_exists(conn, state)
    if had_live:
        # Every live table first, all at once: dropping the retired schema
        # would otherwise lock its tables one by one, and a reader holding
        # one while asking for another would deadlock with it.
        lock_for_swap(conn, conn.execute(text(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'm', 'v') "
            "ORDER BY c.relname"), {"schema": state}).scalars().all())
        conn.execute(text(f"ALTER SCHEMA {state} RENAME TO {retired}"))
    conn.execute(text(f"ALTER SCHEMA {staging} RENAME TO {state}"))
    if had_live:
        conn.execute(text(f"DROP SCHEMA {retired} CASCADE"))
