"""`python -m services.admin.nightly`: the automatic nc import, run once a
night by the Kubernetes CronJob `nc-nightly-import` (or the host's cron
with docker compose).

It replaces the dataset named "Automated NC import" with one for the
state's FTP server (`ftp://nc.us/`), dated the day before and reporting to
NC_AUTO_IMPORT_MONITORS, and requests its import, which waits its turn
behind any nc import under way. The request is published at once when the
broker answers, and otherwise by the admin service's outbox timer.
"""

from __future__ import annotations

import logging
import sys
from datetime import date, datetime

from services.admin import datasets, imports
from shared import outbox
from shared.config import Config
from shared.db import make_engine
from shared.logs import setup_logging
from shared.nameko_support import broker_reachable
from shared.states import STATES
from shared.tables import admin_outbox

log = logging.getLogger("services.admin.nightly")


def schedule(config: Config, today: date | None = None) -> dict:
    """Record the night's dataset and its import; the import record."""
    today = today or datetime.now(STATES["nc"].zone).date()
    engine = make_engine(config)
    try:
        with engine.begin() as conn:
            dataset = datasets.replace_auto_nc(conn, config, today)
            record = imports.request(conn, dataset,
                                     report_to=list(config.nc_auto_import_monitors))
        if broker_reachable(config):
            outbox.relay(engine, imports.admin_publisher(config), table=admin_outbox)
    finally:
        engine.dispose()
    return record


def main() -> int:
    config = Config.from_env()
    setup_logging(config.log_level, log_format=config.log_format)
    try:
        record = schedule(config)
    except Exception as error:
        log.exception("the nightly nc import could not be requested")
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"import {record['id']} of {datasets.AUTO_NC_NAME!r} requested "
          f"({record['status']}); reports to "
          f"{', '.join(config.nc_auto_import_monitors) or 'nobody'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
