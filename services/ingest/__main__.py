"""`python -m services.ingest`: run the ingest services (ingest_nc)."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from services.ingest.service import SERVICES  # noqa: E402
from shared.config import Config  # noqa: E402
from shared.logs import setup_logging  # noqa: E402
from shared.nameko_support import run_services  # noqa: E402

# isort: on

if __name__ == "__main__":
    config = Config.from_env()
    setup_logging(config.log_level)
    # One import at a time per process: an import holds hundreds of MB and
    # both cores, and a request this process is not running stays in the
    # queue for another replica.
    run_services(SERVICES, config, max_workers=1)
