"""`python -m services.admin`: run the admin service."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

from shared.nameko_support import main  # noqa: E402

# isort: on


def sync_tokens(config) -> None:
    from services.admin.tokens import sync_from_config
    from shared.db import make_engine

    engine = make_engine(config)
    sync_from_config(engine, config.admin_tokens)
    engine.dispose()


if __name__ == "__main__":
    main("services.admin.service", before=sync_tokens)
