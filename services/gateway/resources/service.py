"""Service endpoints for operators and orchestrators: `/healthz` (the
process answers), `/readyz` (the database answers; the cache and the broker
reported, degraded but ready without them) and `/openapi.json`."""

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
    when the service cannot be reached; `required` names those the gateway
    cannot serve without (503 when one is down). Another one down leaves
    the gateway ready, with "degraded" in the body: an orchestrator that
    took every gateway out of service for a cache restart would take the
    whole site down."""

    def __init__(self, checks: dict[str, Callable[[], None]], required=frozenset()):
        self.checks = checks
        self.required = required

    def on_get(self, req, resp) -> None:
        status = {}
        for name, check in self.checks.items():
            try:
                check()
                status[name] = "up"
            except Exception as error:  # any failure means down
                log.warning("readiness: %s is down: %s", name, error.__class__.__name__)
                status[name] = "down"
        down = [name for name, state in status.items() if state == "down"]
        unready = [name for name in down if name in self.required]
        if unready:
            raise Unavailable(f"{' and '.join(unready)} "
                              f"{'is' if len(unready) == 1 else 'are'} down",
                              details={"checks": status})
        resp.media = {"status": "degraded" if down else "ok", "checks": status}


class OpenApi:
    def __init__(self, document: dict):
        self.document = document

    def on_get(self, req, resp) -> None:
        resp.media = self.document
