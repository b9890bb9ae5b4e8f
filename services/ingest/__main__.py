"""`python -m services.ingest`: run the ingest services (one per state)."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from shared.nameko_support import main  # noqa: E402

# isort: on

if __name__ == "__main__":
    # One import at a time per process: an import holds hundreds of MB and
    # both cores, and a request this process is not running stays in the
    # queue for another replica.
    main("services.ingest.service", part="ingest", max_workers=1)
