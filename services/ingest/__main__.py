"""`python -m services.ingest [STATE ...]`: run the ingest services, one per
state; with state codes, only those states' (one Deployment per state in
k8s/)."""

# isort: off
import shared  # noqa: F401  (first: quiets eventlet's import warning)
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from shared.nameko_support import main  # noqa: E402

# isort: on


def selected(codes: list[str]):
    """The filter of `main` keeping the named states' services; None for all."""
    if not codes:
        return None
    wanted = {code.lower() for code in codes}
    return lambda cls: cls.state in wanted


def check_states(config) -> None:
    """Refuse a state code no registered state has, naming the known ones."""
    from shared.states import STATES

    unknown = sorted({code.lower() for code in sys.argv[1:]} - set(STATES))
    if unknown:
        sys.exit(f"python -m services.ingest: unknown state(s) {', '.join(unknown)}; "
                 f"known: {', '.join(STATES)}")


if __name__ == "__main__":
    # One import at a time per process: an import holds hundreds of MB and
    # both cores, and a request this process is not running stays in the
    # queue for another replica.
    main("services.ingest.service", part="ingest", max_workers=1, before=check_states,
         select=selected(sys.argv[1:]))
