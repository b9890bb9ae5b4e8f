"""Releases and requests more than one test module builds (this module holds
no tests): nc releases written with services/ingest/nc/synthetic.py's
RawReleaseWriter, and import requests as admin sends them."""

from __future__ import annotations

import uuid

from shared.events import ADMIN_SOURCE, IMPORT_REQUESTED
from shared.nameko_support import publisher
from tests.support.gateway import ALDER, BIRCHWOOD

PATROL = "NC State Highway Patrol"
END_TO_END_AGENCY = "Juniper End-to-End Police Department"

__all__ = ["ALDER", "BIRCHWOOD", "PATROL", "END_TO_END_AGENCY", "new_id", "request",
           "small_release", "release_of", "request_import"]


def new_id(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def request(url: str, **extra) -> dict:
    """An nc import request, as the pipeline takes it."""
    return {"import_id": new_id(), "state": "nc", "url": url, **extra}


def small_release(writer) -> None:
    """Five stops of three agencies: a passenger, a year boundary at 23:59,
    searches with contraband, and two stops before 2002 (one kept: the
    State Highway Patrol's)."""
    writer.stop(1, ALDER, "2015-03-01 08:30:00.000", purpose=1, officer_id="A1")
    writer.stop(2, ALDER, "2015-12-31 23:59:00.000", purpose=2, officer_id="A2")
    writer.stop(3, BIRCHWOOD, "2016-01-01 00:01:00", purpose=3)
    writer.stop(4, PATROL, "2001-06-01 10:00:00.000")
    writer.stop(5, BIRCHWOOD, "2001-06-01 10:00:00.000")
    writer.person(11, 1, "D", 30, "M", "N", "W")
    writer.person(12, 1, "P", 25, "F", "H", "B")
    writer.person(21, 2, "D", 41, "F", "N", "B")
    writer.person(31, 3, "D", 52, "M", "H", "W")
    writer.person(41, 4, "D", 19, "M", "N", "A")
    writer.person(51, 5, "D", 33, "F", "N", "I")
    writer.search(101, 1, 11, search_type=3)
    writer.search(501, 5, 51, search_type=1)
    writer.contraband(201, 101, 11, 1, ounces="1.5", money="200")
    writer.contraband(501, 501, 51, 5, grams="3")
    writer.search_basis(301, 101, 11, 1, "OB")
    writer.search_basis(501, 501, 51, 5, "ER")


def release_of(stops: int, newcomer: str | None = None):
    """A release of `stops` stops of END_TO_END_AGENCY (and one of `newcomer`)."""
    def write(writer):
        for stop_id in range(1, stops + 1):
            writer.stop(stop_id, END_TO_END_AGENCY, f"2016-0{1 + stop_id % 9}-10 10:00:00")
            writer.person(stop_id, stop_id, "D", race="B" if stop_id % 2 else "W")
        if newcomer:
            writer.stop(stops + 1, newcomer, "2016-05-05 10:00:00")
            writer.person(stops + 1, stops + 1)
    return write


def request_import(config, url: str, state: str = "nc") -> str:
    """Publish an import request as the admin service does; its import id."""
    import_id = f"svc-{uuid.uuid4().hex[:10]}"
    publisher(config)(ADMIN_SOURCE, IMPORT_REQUESTED,
             {"import_id": import_id, "state": state, "url": url})
    return import_id
