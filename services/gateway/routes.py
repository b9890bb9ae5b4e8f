"""Every route of the gateway, once: the app adds them and the OpenAPI
document describes them from the same list."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from services.gateway.backends import READINESS_CHECKS, REQUIRED, Deps
from services.gateway.observability import METRICS_PATH, Metrics
from services.gateway.resources.agencies import Agency, AgencyList
from services.gateway.resources.aggregates import AGGREGATES, Aggregate
from services.gateway.resources.analytics import Disparities, Officers
from services.gateway.resources.facts import Facts
from services.gateway.resources.operator import (
    AgencyMapping,
    CensusRefresh,
    CensusRefreshRecord,
    Dataset,
    DatasetImport,
    Datasets,
    Import,
    Imports,
    StopReasons,
)
from services.gateway.resources.service import Health, Readiness
from services.gateway.resources.stops import FindStops
from services.gateway.validation import MAX_ID
from shared.config import Config

AGENCY_ID = f"{{agency_id:int(min=1, max={MAX_ID})}}"
AGENCY = f"/{{state}}/api/agency/{AGENCY_ID}/"
STATEWIDE = "/{state}/api/statewide/"


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
        Route(f"{AGENCY}disparities/", Disparities(engine),
              "Search, hit and stop rates by group, with 95% intervals and their ratios "
              "to the reference group"),
        Route(f"{AGENCY}officers/", Officers(engine),
              "Officers ranked by the search-rate disparity of a group, with Fisher "
              "p-values and Benjamini-Hochberg q-values"),
        *(Route(f"{STATEWIDE}{name}/", Aggregate(engine, spec),
                f"{spec.summary}, over every agency of the state")
          for name, spec in AGGREGATES.items()),
        Route(f"{STATEWIDE}disparities/", Disparities(engine),
              "Disparities over every agency of the state, against the state's residents"),
        Route("/{state}/api/facts/", Facts(engine), "The state's landing-page facts"),
        Route("/{state}/api/stops/", FindStops(engine),
              "Find stops, newest first, a page at a time"),
    ]


def operator_routes(admin) -> list[Route]:
    return [
        Route("/admin/api/datasets/", Datasets(admin),
              "List dataset records, or register one (201; 409 on a used name or URL)"),
        Route("/admin/api/datasets/{dataset_id:int(min=1)}/", Dataset(admin),
              "One dataset record"),
        Route("/admin/api/datasets/{dataset_id:int(min=1)}/import/", DatasetImport(admin),
              "Ask for an import of the dataset (202, queued)"),
        Route("/admin/api/imports/", Imports(admin), "Imports, newest first"),
        Route("/admin/api/imports/{import_id:int(min=1)}/", Import(admin),
              "One import: status, phase, progress, counts, error"),
        Route("/admin/api/agencies/{state}/mapping/", AgencyMapping(admin),
              "The state's agency mapping (CSV code,name,geoid); PUT replaces it"),
        Route("/admin/api/stop-reasons/{state}/", StopReasons(admin),
              "Maryland's statute-stem to purpose table (CSV stem,purpose); PUT "
              "replaces it"),
        Route("/admin/api/census/refresh/", CensusRefresh(admin),
              "Ask for the census profiles to be loaded again (202)"),
        Route("/admin/api/census/refresh/{request_id}/", CensusRefreshRecord(admin),
              "A census refresh: requested, loaded (with the profiles' count) or failed"),
    ]


def service_routes(deps: Deps, config: Config) -> list[Route]:
    checks = {name: partial(check, deps, config) for name, check in READINESS_CHECKS.items()}
    return [
        Route("/healthz", Health(), "The process is alive"),
        Route("/readyz", Readiness(checks, REQUIRED),
              "The database answers (cache and broker outages are reported as degraded)"),
    ]


def metrics_route(config: Config) -> Route:
    """Prometheus's /metrics (services/gateway/observability.py): outside the
    API's document, since with METRICS_PORT set it is not served on the API's
    port at all."""
    return Route(METRICS_PATH, Metrics(config.metrics_port),
                 "Prometheus metrics, summed over the gateway's workers")
