"""`python -m services.admin`: run the admin service."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from services.admin.service import SERVICES  # noqa: E402
from services.admin.tokens import sync_from_config  # noqa: E402
from shared.config import Config  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.logs import setup_logging  # noqa: E402
from shared.nameko_support import run_services  # noqa: E402

# isort: on

if __name__ == "__main__":
    config = Config.from_env()
    setup_logging(config.log_level)
    engine = make_engine(config)
    sync_from_config(engine, config.admin_tokens)
    engine.dispose()
    run_services(SERVICES, config)
