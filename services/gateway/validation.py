"""Query parameters, checked with marshmallow schemas.

`load(schema, req.params)` returns the loaded values or raises
BadParameter naming each bad parameter and what it allows. An empty value
(`officer=`) counts as absent; a parameter that is not repeatable may be
given once; parameters nobody asked for are ignored, so cache-busting
parameters some clients add do no harm.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import OneOf, Range

from services.gateway.errors import BadParameter
from shared.states import (
    DISPARITY_GROUPS,
    GENDERS,
    NC_ACTIONS,
    NC_ETHNICITIES,
    NC_PURPOSES,
    NC_RACES,
    REFERENCE_GROUP,
)

OFFICER_ID = re.compile(r"[A-Za-z0-9_-]{1,15}")
MAX_DAYS_APART = 366
# Postgres integer columns; a bigger id is simply unknown rather than an error.
MAX_ID = 2**31 - 1
# Paging is by OFFSET; past this a client should narrow the dates instead.
MAX_PAGE = 100_000
# Far wider than any data; it keeps date arithmetic away from year 9999.
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2199, 12, 31)


def _officer_id(value: str) -> None:
    if not OFFICER_ID.fullmatch(value):
        raise ValidationError("must be 1 to 15 letters, digits, - or _")


def _officer() -> fields.String:
    return fields.String(validate=_officer_id, load_default=None, metadata={
        "description": "Only this officer's stops (compared case-sensitively)",
        "pattern": f"^{OFFICER_ID.pattern}$"})


def _whole_number(low: int, high: int, description: str, **options) -> fields.Integer:
    allowed = f"must be a whole number from {low} to {high}"
    messages = {"invalid": allowed, "required": f"is required; {allowed}"}
    return fields.Integer(validate=Range(min=low, max=high, error=allowed),
                          error_messages=messages, metadata={"description": description},
                          **options)


def _one_of(labels: dict, description: str) -> fields.String:
    codes = ", ".join(labels)
    return fields.String(validate=OneOf(list(labels), error=f"must be one of {codes}"),
                         metadata={"description": description})


def _codes_of(labels: dict[int, str], description: str) -> fields.List:
    message = f"must be codes from {min(labels)} to {max(labels)}"
    code = fields.Integer(validate=OneOf(list(labels), error=message),
                          error_messages={"invalid": message})
    return fields.List(code, load_default=list, metadata={"description": description})


def _date(description: str) -> fields.Date:
    allowed = f"must be a date as YYYY-MM-DD from {FIRST_DATE} to {LAST_DATE}"
    return fields.Date(validate=Range(min=FIRST_DATE, max=LAST_DATE, error=allowed),
                       error_messages={"invalid": allowed},
                       metadata={"description": description})


class QuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE


PERIOD = re.compile(r"([0-9]{4})(?:-([0-9]{2}))?")
FIRST_YEAR, LAST_YEAR = 1900, 2199


def _period_value(value: str) -> None:
    match = PERIOD.fullmatch(value)
    if (match is None or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR
            or (match[2] is not None and not 1 <= int(match[2]) <= 12)):
        raise ValidationError(f"must be a year YYYY or a month YYYY-MM, from {FIRST_YEAR} to "
                              f"{LAST_YEAR}")


def _period(description: str) -> fields.String:
    return fields.String(validate=_period_value, metadata={"description": description})


def _refused(message: str, description: str) -> fields.String:
    """A parameter an endpoint does not take, refused with `message` (a
    parameter nobody asked for is otherwise ignored)."""
    def refuse(value):
        raise ValidationError(message)
    return fields.String(validate=refuse, metadata={"description": description})


class AggregateQuery(QuerySchema):
    officer = _officer()
    from_ = _period("First year or month, inclusive, in the state's time zone "
                    "(YYYY or YYYY-MM; il: YYYY)")
    from_.data_key = "from"
    to = _period("Last year or month, inclusive (YYYY or YYYY-MM; il: YYYY)")
    by = fields.String(validate=OneOf(["year", "month"], error="must be year or month"),
                       metadata={"description": "Rows by year (default) or by month "
                                                "(nc, md)"})
    format = fields.String(validate=OneOf(["json", "csv"], error="must be json or csv"),
                           metadata={"description": "csv for an RFC 4180 CSV body "
                                                    "(or send Accept: text/csv)"})


class DisparityQuery(AggregateQuery):
    by = _refused("is not accepted here: disparities are over the whole range",
                  "Not accepted: disparities are over the whole range")


GROUP_CHOICES = [group for group in DISPARITY_GROUPS if group != REFERENCE_GROUP]


class OfficersQuery(DisparityQuery):
    by = _refused("is not accepted here: the ranking is over the whole range",
                  "Not accepted: the ranking is over the whole range")
    officer = _refused("is not accepted here: the ranking lists every officer",
                       "Not accepted: the ranking lists every officer")
    group = fields.String(
        load_default="black",
        validate=OneOf(GROUP_CHOICES, error=f"must be one of {', '.join(GROUP_CHOICES)}"),
        metadata={"description": f"The group compared with {REFERENCE_GROUP} drivers"})
    min_stops = _whole_number(1, 100_000, "Officers with at least this many stops are "
                              "listed", load_default=100)


def period_bound(value: str | None, last: bool) -> int | None:
    """`YYYY` or `YYYY-MM` as year * 100 + month; a year alone is its first
    month, or with `last` its last."""
    if value is None:
        return None
    match = PERIOD.fullmatch(value)
    month = int(match[2]) if match[2] else (12 if last else 1)
    return int(match[1]) * 100 + month


def check_scope(state, agency_id: int | None, query: dict) -> None:
    """What a loaded query may not ask of this state or path, as a 400."""
    problems = {}
    if query.get("officer") is not None:
        if agency_id is None:
            problems["officer"] = ("officer ids are only unique within an agency; leave "
                                   "officer out of statewide paths")
        elif not state.has_officers:
            problems["officer"] = f"{state.code} has no officer data; leave officer out"
    if not state.has_dates:
        for name in ("from", "to"):
            if query.get(name) and "-" in query[name]:
                problems[name] = (f"{state.code} releases carry years only: use YYYY")
        if query.get("by") == "month":
            problems["by"] = f"{state.code} releases carry years only: leave by out"
    first = period_bound(query.get("from"), last=False)
    last = period_bound(query.get("to"), last=True)
    if first is not None and last is not None and last < first and "to" not in problems:
        problems["to"] = "must not be before from"
    if problems:
        raise BadParameter(dict(sorted(problems.items())))


class FindStopsQuery(QuerySchema):
    agency = _whole_number(1, MAX_ID, "The agency's id", required=True)
    officer = _officer()
    start_date = _date("First day, in the state's time zone (inclusive)")
    end_date = _date(f"Last day (inclusive), at most {MAX_DAYS_APART} days after start_date")
    age = _whole_number(0, 150, "The driver's age")
    gender = _one_of(GENDERS, "The driver's gender")
    race = _one_of(NC_RACES, "The driver's race")
    ethnicity = _one_of(NC_ETHNICITIES, "The driver's ethnicity")
    purpose = _codes_of(NC_PURPOSES, "Purpose codes (repeat the parameter for several)")
    action = _codes_of(NC_ACTIONS, "Action codes (repeat the parameter for several)")
    page = _whole_number(1, MAX_PAGE, "Page number", load_default=1)
    page_size = _whole_number(1, 100, "Stops per page", load_default=25)

    @validates_schema
    def _date_range(self, data, **kwargs) -> None:
        start, end = data.get("start_date"), data.get("end_date")
        if start is None or end is None:
            return
        if end < start:
            raise ValidationError("must not be before start_date", "end_date")
        if end - start > timedelta(days=MAX_DAYS_APART):
            raise ValidationError(
                f"must be at most {MAX_DAYS_APART} days after start_date", "end_date")


def _first_message(messages) -> str:
    """The first message of a field (a List field nests them by index)."""
    while isinstance(messages, dict | list):
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return str(messages)


def load(schema: Schema, params: dict) -> dict:
    """The loaded values, keyed by parameter name (`from`, not `from_`)."""
    known = {field.data_key or name: field for name, field in schema.fields.items()}
    repeatable = {name for name, field in known.items() if isinstance(field, fields.List)}
    values: dict = {}
    problems: dict[str, str] = {}
    for name, value in params.items():
        given = [item for item in (value if isinstance(value, list) else [value]) if item]
        if not given or name not in known:
            continue
        if name in repeatable:
            values[name] = given
        elif len(given) > 1:
            problems[name] = "must be given once"
        else:
            values[name] = given[0]
    try:
        loaded = schema.load(values)
    except ValidationError as error:
        for name, messages in error.normalized_messages().items():
            problems.setdefault(name, _first_message(messages))
        loaded = None
    if problems:
        raise BadParameter(dict(sorted(problems.items())))
    return {(schema.fields[name].data_key or name): value for name, value in loaded.items()}
