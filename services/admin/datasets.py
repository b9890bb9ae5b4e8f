"""Dataset records: what an operator registers before asking for an import.

    {"id": 3, "state": "nc", "name": "NC 2026-11", "date_added": "2026-11-27",
     "date_received": "2026-11-26", "url": "ftp://nc.us/", "destination": null,
     "report_email_1": "ops@example.org", "report_email_2": null}
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from marshmallow import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from shared.config import Config
from shared.netguard import networks
from shared.operator import (
    Conflict,
    DatasetIn,
    InvalidInput,
    NotFound,
    flatten,
    inside_data_dir,
)
from shared.tables import datasets

AUTO_NC_NAME = "Automated NC import"
AUTO_NC_URL = "ftp://nc.us/"
# Which field a unique constraint protects, for the 409's message.
UNIQUE_FIELDS = {"datasets_name_key": "name", "datasets_url_key": "url"}


def record(row) -> dict:
    out = dict(row._mapping)
    for key in ("date_added", "date_received"):
        out[key] = out[key].isoformat()
    return out


def validate(config: Config, body) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    try:
        data = DatasetIn(data_dir=config.data_dir, allow_file_urls=config.allow_file_urls,
                         allowed_networks=networks(config.download_allowed_networks)
                         ).load(body)
    except ValidationError as error:
        raise InvalidInput(flatten(error.messages)) from None
    if data["destination"] is not None:
        data["destination"] = str(inside_data_dir(data["destination"], config.data_dir))
    return data


def _check_destination_is_its_own(conn, dataset_id: int, destination: str | None) -> None:
    """A folder another dataset downloads into (or one inside or around it)
    would mix two releases' files: refused."""
    if destination is None:
        return
    mine = Path(destination)
    for name, theirs in conn.execute(select(datasets.c.name, datasets.c.destination).where(
            datasets.c.destination.is_not(None), datasets.c.id != dataset_id)):
        other = Path(theirs)
        if mine == other or other in mine.parents or mine in other.parents:
            raise InvalidInput({"destination": f"overlaps {other}, the folder of dataset "
                                               f"{name!r}; choose a folder of its own"})


def add(conn, config: Config, body) -> dict:
    data = validate(config, body)
    try:
        with conn.begin_nested():
            row = conn.execute(datasets.insert().values(**data).returning(datasets)).one()
    except IntegrityError as error:
        constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
        field = UNIQUE_FIELDS.get(constraint)
        if field is None:
            raise
        raise Conflict(f"{field}: another dataset already has {field} {data[field]!r}") from None
    # After the insert, so a used name or URL is the 409 it always was; the
    # operator call's transaction rolls the row back on a refusal here.
    _check_destination_is_its_own(conn, row.id, data["destination"])
    return record(row)


def get(conn, dataset_id: int) -> dict:
    row = conn.execute(select(datasets).where(datasets.c.id == dataset_id)).first()
    if row is None:
        raise NotFound(f"there is no dataset {dataset_id}")
    return record(row)


def find(conn, key: str) -> dict:
    """A dataset by id or by exact name (what `odp import DATASET` takes)."""
    if str(key).isdigit():
        return get(conn, int(key))
    row = conn.execute(select(datasets).where(datasets.c.name == key)).first()
    if row is None:
        raise NotFound(f"there is no dataset named {key!r}")
    return record(row)


def all_(conn) -> list[dict]:
    return [record(row) for row in conn.execute(select(datasets).order_by(datasets.c.id))]


def replace_auto_nc(conn, config: Config, today: date) -> dict:
    """The nightly nc dataset: the previous one goes (its imports stay, with
    no dataset), a new one for the state's FTP server, dated yesterday."""
    conn.execute(delete(datasets).where(datasets.c.name == AUTO_NC_NAME))
    monitors = list(config.nc_auto_import_monitors) + [None, None]
    return add(conn, config, {
        "state": "nc", "name": AUTO_NC_NAME, "url": AUTO_NC_URL,
        "date_received": (today - timedelta(days=1)).isoformat(),
        "report_email_1": monitors[0], "report_email_2": monitors[1]})
