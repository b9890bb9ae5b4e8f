"""Alembic environment: the URL comes from shared.config, tables from shared.tables."""

from alembic import context
from sqlalchemy import create_engine

from shared.config import Config
from shared.db import sqlalchemy_url
from shared.tables import metadata

url = context.config.attributes.get("database_url") or Config.from_env().database_url


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          include_schemas=True)
        context.run_migrations()
    engine.dispose()


run_migrations_online()
