"""The one error an import ends with: a phase and a message a person can act on."""

from shared.db import connection_lost


class ImportFailed(Exception):
    def __init__(self, phase: str, message: str):
        super().__init__(message)
        self.phase = phase
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        # Pickled with both arguments, so a parse worker's failure reaches
        # the import whole (Exception pickles its args: the message alone).
        return type(self), (self.phase, self.message)


def database_lost(error: BaseException) -> str | None:
    """What to tell a person when `error` is the database connection lost:
    an outage, with what to do. None otherwise."""
    said = connection_lost(error)
    if said is None:
        return None
    return (f"the database connection was lost ({said}); the data being served did not "
            "change; request the import again once PostgreSQL is back")
