"""The one error an import ends with: a phase and a message a person can act on."""


class ImportFailed(Exception):
    def __init__(self, phase: str, message: str):
        super().__init__(message)
        self.phase = phase
        self.message = message

    def __str__(self) -> str:
        return self.message


def database_lost(error: BaseException) -> str | None:
    """What to tell a person when `error` (or what caused it) is the database
    connection lost or refused (PostgreSQL restarted, stopped, unreachable):
    an outage, not a fault of the release or of the code. None otherwise."""
    import psycopg2
    from sqlalchemy import exc

    lost = (psycopg2.OperationalError, psycopg2.InterfaceError, exc.OperationalError,
            exc.InterfaceError, exc.DisconnectionError)
    seen, said = set(), None
    # The deepest such error says most ("terminating connection due to
    # administrator command", where the last one says "invalid socket").
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, lost):
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()
            said = detail[0] if detail else type(error).__name__
        error = error.__cause__ or error.__context__
    if said is None:
        return None
    return (f"the database connection was lost ({said}); the data being served did not "
            "change; request the import again once PostgreSQL is back")
