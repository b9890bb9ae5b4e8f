"""`python -m services.census`: run the census service."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from services.census.service import SERVICES  # noqa: E402
from shared.config import Config  # noqa: E402
from shared.logs import setup_logging  # noqa: E402
from shared.nameko_support import run_services  # noqa: E402

# isort: on

if __name__ == "__main__":
    config = Config.from_env()
    setup_logging(config.log_level)
    run_services(SERVICES, config)
