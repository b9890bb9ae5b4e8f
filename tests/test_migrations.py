"""The Alembic migrations build what shared/tables.py declares.

A database of the module's own is created and migrated with `odp db setup`'s
code, then compared with the metadata. Only the schemas the metadata owns are
compared: the state schemas (nc, md, il and their nc_staging_* builds) are
made by imports, and the stats summaries (stats.<state>_stop_summary, ...) by
refreshes, neither by migrations.
"""

from __future__ import annotations

import re
import uuid
from pprint import pformat

import psycopg2
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Index, Table, inspect
from sqlalchemy.dialects import postgresql

from shared.config import Config
from shared.db import make_engine, psycopg2_dsn
from shared.dbsetup import ROOT, setup
from shared.tables import metadata

pytestmark = pytest.mark.interface

SCHEMAS = {table.schema for table in metadata.tables.values()}
# What services/stats/summaries.py builds and swaps in at each refresh.
RUNTIME_STATS_TABLE = re.compile(r"[a-z]{2}_(stop_summary|agency_summary|agencies)(_building)?")


def _maintenance(sql: str, *params) -> None:
    conn = psycopg2.connect(psycopg2_dsn("postgresql:///postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        conn.close()


def _drop_database(name: str) -> None:
    _maintenance("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = %s AND pid <> pg_backend_pid()", name)
    _maintenance(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="module")
def migrated() -> Config:
    """A fresh database migrated to head, dropped afterwards whatever happens."""
    name = f"odp_test_migrations_{uuid.uuid4().hex[:12]}"
    config = Config.from_env(environ={}, env_file=None).with_changes(
        database_url=f"postgresql:///{name}")
    try:
        setup(config)
        yield config
    finally:
        _drop_database(name)


def _alembic(config: Config) -> AlembicConfig:
    """The Alembic configuration shared/dbsetup.migrate builds."""
    alembic_config = AlembicConfig(str(ROOT / "alembic.ini"))
    alembic_config.set_main_option("script_location", str(ROOT / "migrations"))
    alembic_config.attributes["database_url"] = config.database_url
    return alembic_config


def _include_name(name, type_, parent_names) -> bool:
    if type_ == "schema":
        return name in SCHEMAS
    if type_ == "table":
        return not (parent_names["schema_name"] == "stats" and RUNTIME_STATS_TABLE.fullmatch(name))
    return True


def _normalized(predicate) -> str | None:
    if predicate is None:
        return None
    if not isinstance(predicate, str):
        predicate = str(predicate.compile(dialect=postgresql.dialect(),
                                          compile_kwargs={"literal_binds": True,
                                                          "include_table": False}))
    return re.sub(r"[\s()]", "", predicate).lower()


def _differences(config: Config) -> list:
    engine = make_engine(config)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "include_schemas": True,
                "include_name": _include_name,
                "compare_type": True,
                "compare_server_default": True,
            })
            diff = compare_metadata(context, metadata)
            # Alembic compares an index's columns, not a partial index's WHERE.
            inspector = inspect(conn)
            for table in metadata.tables.values():
                reflected = {index["name"]: index for index in
                             inspector.get_indexes(table.name, schema=table.schema)}
                for index in table.indexes:
                    if index.name not in reflected:
                        continue  # compare_metadata names it already
                    declared = _normalized(index.dialect_options["postgresql"]["where"])
                    found = _normalized(
                        reflected[index.name].get("dialect_options", {}).get("postgresql_where"))
                    if declared != found:
                        diff.append(("index_where", f"{table.fullname}.{index.name}",
                                     {"database": found, "declared": declared}))
            return diff
    finally:
        engine.dispose()


def _describe(diff: list) -> str:
    """The differences, with the schema of each table and index named (the
    repr of an Index leaves it out)."""
    def name(item):
        if isinstance(item, Index):
            return f"{item.table.fullname}.{item.name} {[c.name for c in item.columns]}"
        if isinstance(item, Table):
            return item.fullname
        return item
    return pformat([tuple(name(item) for item in entry) if isinstance(entry, tuple) else entry
                    for entry in diff], width=100)


def _current_revision(config: Config) -> str | None:
    engine = make_engine(config)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_migrations_build_the_declared_tables(migrated):
    diff = _differences(migrated)
    assert diff == [], "migrations and shared/tables.py differ:\n" + _describe(diff)


def test_head_downgrades_and_upgrades_again(migrated):
    alembic_config = _alembic(migrated)
    head = ScriptDirectory.from_config(alembic_config).get_current_head()
    assert _current_revision(migrated) == head

    command.downgrade(alembic_config, "0006")
    assert _current_revision(migrated) == "0006"
    command.upgrade(alembic_config, "head")
    assert _current_revision(migrated) == head

    diff = _differences(migrated)
    assert diff == [], "after downgrade and upgrade:\n" + _describe(diff)
