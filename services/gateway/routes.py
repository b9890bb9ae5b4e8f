"""Every route of the gateway, once: the app adds them and the OpenAPI
document describes them from the same list."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from services.gateway.backends import READINESS_CHECKS, Deps
from services.gateway.resources.agencies import Agency, AgencyList
from services.gateway.resources.aggregates import AGGREGATES, Aggregate
from services.gateway.resources.facts import Facts
from services.gateway.resources.service import Health, Readiness
from services.gateway.resources.stops import FindStops
from services.gateway.validation import MAX_ID
from shared.config import Config

AGENCY = f"/{{state}}/api/agency/{{agency_id:int(min=1, max={MAX_ID})}}/"


@dataclass(frozen=True)
class Route:
    template: str
    resource: object
    summary: str


def state_routes(engine) -> list[Route]:
    return [
        Route("/{state}/api/agency/", AgencyList(engine),
              "Every agency of the state, sorted by name"),
        Route(AGENCY, Agency(engine), "One agency with its census profile"),
        *(Route(f"{AGENCY}{name}/", Aggregate(engine, spec), spec.summary)
          for name, spec in AGGREGATES.items()),
        Route("/{state}/api/facts/", Facts(engine), "The state's landing-page facts"),
        Route("/{state}/api/stops/", FindStops(engine),
              "Find stops, newest first, a page at a time"),
    ]


def service_routes(deps: Deps, config: Config) -> list[Route]:
    checks = {name: partial(check, deps, config) for name, check in READINESS_CHECKS.items()}
    return [
        Route("/healthz", Health(), "The process is alive"),
        Route("/readyz", Readiness(checks), "Database, broker and cache are reachable"),
    ]
