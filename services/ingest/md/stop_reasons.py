"""The Maryland stop-reason table an md import applies: the operators'
replacement (table `ingest.md_stop_reasons`, filled from the admin service's
`stop_reasons_updated`) when there is one, else the project's default
(shared/md_stop_reasons.py).
"""

from __future__ import annotations

from sqlalchemy import text

from shared.md_stop_reasons import default

TABLE = "ingest.md_stop_reasons"


def load(engine) -> dict[str, str]:
    """The operator's mapping (table ingest.md_stop_reasons) when that table
    exists and has rows; otherwise the default one."""
    if engine is not None:
        with engine.connect() as conn:
            if conn.execute(text(f"SELECT to_regclass('{TABLE}')")).scalar() is not None:
                rows = conn.execute(text(f"SELECT stem, purpose FROM {TABLE}")).all()
                if rows:
                    return {stem.strip(): purpose for stem, purpose in rows}
    return default()
