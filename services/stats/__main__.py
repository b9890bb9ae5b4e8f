"""`python -m services.stats`: run the stats service."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from shared.nameko_support import main  # noqa: E402

# isort: on

if __name__ == "__main__":
    # One refresh at a time per process: a refresh holds a large query.
    main("services.stats.service", part="stats", max_workers=1)
