"""Service endpoints for operators and orchestrators: `/healthz` (the
process answers), `/readyz` (database, broker and cache reachable) and
`/openapi.json`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.gateway.errors import Unavailable

log = logging.getLogger(__name__)


class Health:
    def on_get(self, req, resp) -> None:
        resp.media = {"status": "ok"}


class Readiness:
    """`checks` maps a backing service's name to a callable that raises
    when the service cannot be reached."""

    def __init__(self, checks: dict[str, Callable[[], None]]):
        self.checks = checks

    def on_get(self, req, resp) -> None:
        status = {}
        for name, check in self.checks.items():
            try:
                check()
                status[name] = "up"
            except Exception as error:  # any failure means not ready
                log.warning("readiness: %s is down: %s", name, error.__class__.__name__)
                status[name] = "down"
        down = [name for name, state in status.items() if state == "down"]
        if down:
            raise Unavailable(f"{' and '.join(down)} {'is' if len(down) == 1 else 'are'} down",
                              details={"checks": status})
        resp.media = {"status": "ok", "checks": status}


class OpenApi:
    def __init__(self, document: dict):
        self.document = document

    def on_get(self, req, resp) -> None:
        resp.media = self.document
