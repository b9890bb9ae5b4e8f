"""Create the database and roles and run the migrations: `odp db setup`.

Idempotent, so `make run` and `make test` call it every time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg2
from alembic import command
from alembic.config import Config as AlembicConfig
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
    conn = psycopg2.connect(psycopg2_dsn(config.database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # Roles belong to the whole cluster: two setups at once (two test
            # workers) take turns here, or both would try to create it.
            cur.execute("SELECT pg_advisory_lock(%s)", (ROLE_LOCK,))
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,))
            if not cur.fetchone():
                cur.execute(f"CREATE ROLE {READER_ROLE} LOGIN")
                log.info("created role %s", READER_ROLE)
    finally:
        conn.close()


def migrate(config: Config, revision: str = "head") -> None:
    alembic_config = AlembicConfig(str(ROOT / "alembic.ini"))
    alembic_config.set_main_option("script_location", str(ROOT / "migrations"))
    alembic_config.attributes["database_url"] = config.database_url
    command.upgrade(alembic_config, revision)


def setup(config: Config) -> None:
    ensure_database(config)
    ensure_roles(config)
    migrate(config)
