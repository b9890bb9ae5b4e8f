"""`python -m services.census`: run the census service."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from shared.nameko_support import main  # noqa: E402

# isort: on

if __name__ == "__main__":
    main("services.census.service")
