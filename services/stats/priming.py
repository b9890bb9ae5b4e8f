"""Warming the gateway's cache after a refresh.

The new generation makes every cached response unreachable at once; the
first readers of the largest agencies would each pay for a query. Right
after the refresh commits, the stats service requests those pages from the
gateway (ODP_URL) once, so they are cached before anyone asks. A gateway
that is down only means a cold cache: it is logged, never an error.
"""

from __future__ import annotations

import logging

import requests

from shared.api import state_paths

log = logging.getLogger(__name__)


def prime(base_url: str, state: str, agency_ids, timeout: float = 10.0) -> int:
    """Request each page once; return how many the gateway answered."""
    answered = 0
    with requests.Session() as session:
        for path in state_paths(state, agency_ids):
            try:
                response = session.get(base_url.rstrip("/") + path, timeout=timeout)
            except requests.RequestException as error:
                log.warning("cache not primed: the gateway at %s did not answer (%s)",
                            base_url, error)
                return answered
            answered += response.status_code == 200
    return answered
