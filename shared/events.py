"""Event names and the marshmallow schemas of their payloads.

Every event a service emits is validated against its schema before it is
written to an outbox or published, and every handler loads its payload with
the same schema, so producer and consumer cannot drift apart.

    {"import_id": "42", "state": "nc", "url": "ftp://nc.us/"}   # import_requested
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from shared.states import KnownState

IMPORT_REQUESTED = "import_requested"
IMPORT_PROGRESS = "import_progress"
DATASET_LOADED = "dataset_loaded"
DATASET_FAILED = "dataset_failed"
STATS_REFRESHED = "stats_refreshed"
CENSUS_REQUESTED = "census_requested"
CENSUS_LOADED = "census_loaded"
CENSUS_FAILED = "census_failed"
AGENCY_MAPPING_UPDATED = "agency_mapping_updated"
STOP_REASONS_UPDATED = "stop_reasons_updated"

# The service that emits import requests: nameko routes events by their
# source service's name.
ADMIN_SOURCE = "admin"
# The ingest services' handler of import_requested; admin declares its queue
# before publishing, so a request sent before ingest ever ran is kept.
IMPORT_HANDLER = "load_release"
# The census service's handler of census_requested, likewise; and the
# handlers of the whole-table updates, by service.
CENSUS_HANDLER = "load_profiles"
MAPPING_HANDLER = ("stats", "apply_agency_mapping")
STOP_REASONS_HANDLER = ("ingest_md", "apply_stop_reasons")

state_field = fields.String(required=True, validate=KnownState())


class ImportRequested(Schema):
    import_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    state = state_field
    url = fields.String(required=True, validate=validate.Length(min=1))
    destination = fields.String(load_default=None, allow_none=True)
    dataset_id = fields.Integer(load_default=None, allow_none=True)
    min_stop_id = fields.Integer(load_default=None, allow_none=True)
    max_stop_id = fields.Integer(load_default=None, allow_none=True)


class ImportProgress(Schema):
    import_id = fields.String(required=True)
    state = state_field
    phase = fields.String(required=True)
    done = fields.Integer(required=True)
    total = fields.Integer(load_default=None, allow_none=True)


class Agency(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class DatasetLoaded(Schema):
    import_id = fields.String(required=True)
    state = state_field
    # Increases with every load of any state: a consumer ignores an event
    # older than the last one it applied.
    data_version = fields.Integer(required=True)
    loaded_at = fields.String(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    dropped = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    new_agencies = fields.List(fields.Nested(Agency), required=True)
    rejected_rows = fields.Integer(required=True)
    rejects_file = fields.String(load_default=None, allow_none=True)


class DatasetFailed(Schema):
    import_id = fields.String(required=True)
    state = state_field
    phase = fields.String(required=True)
    error = fields.String(required=True)
    rejected_rows = fields.Integer(load_default=0)
    rejects_file = fields.String(load_default=None, allow_none=True)


class StatsRefreshed(Schema):
    state = state_field
    # Bumped by every refresh of the state: cache keys and ETags carry it.
    generation = fields.Integer(required=True)
    data_version = fields.Integer(required=True)
    import_id = fields.String(required=True)
    refreshed_at = fields.String(required=True)


class MappingRow(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1))
    name = fields.String(required=True, validate=validate.Length(min=1))
    geoid = fields.String(load_default=None, allow_none=True)


class AgencyMappingUpdated(Schema):
    """The state's whole mapping as it now stands (it is small: one row per
    agency), so a consumer needs nothing but the event to apply it."""
    state = state_field
    rows = fields.List(fields.Nested(MappingRow), required=True)
    updated_at = fields.String(required=True)


class StopReason(Schema):
    stem = fields.String(required=True, validate=validate.Length(min=1))
    purpose = fields.String(required=True, validate=validate.Length(min=1))


class StopReasonsUpdated(Schema):
    """Maryland's whole stop-reason table as an operator replaced it."""
    state = state_field
    rows = fields.List(fields.Nested(StopReason), required=True)
    updated_at = fields.String(required=True)


class CensusRequested(Schema):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    # None: the configured ACS years (CENSUS_YEARS).
    years = fields.List(fields.Integer(), load_default=None, allow_none=True)


class CensusLoaded(Schema):
    request_id = fields.String(required=True)
    years = fields.List(fields.Integer(), required=True)
    profiles = fields.Integer(required=True)
    loaded_at = fields.String(required=True)


class CensusFailed(Schema):
    request_id = fields.String(required=True)
    years = fields.List(fields.Integer(), required=True)
    error = fields.String(required=True)


SCHEMAS = {
    IMPORT_REQUESTED: ImportRequested,
    IMPORT_PROGRESS: ImportProgress,
    DATASET_LOADED: DatasetLoaded,
    DATASET_FAILED: DatasetFailed,
    STATS_REFRESHED: StatsRefreshed,
    AGENCY_MAPPING_UPDATED: AgencyMappingUpdated,
    CENSUS_REQUESTED: CensusRequested,
    STOP_REASONS_UPDATED: StopReasonsUpdated,
    CENSUS_LOADED: CensusLoaded,
    CENSUS_FAILED: CensusFailed,
}


def import_routing_key(state: str) -> str:
    """The routing key of an import request for `state`: `import_requested.md`.

    Each state's ingest queue is bound with its own key, so a request is
    copied into its state's queue only (and, in Kubernetes, wakes only that
    state's pod); the event keeps its name and payload."""
    return f"{IMPORT_REQUESTED}.{state}"


def routing_key(event_type: str, payload: dict) -> str:
    """The routing key `event_type` is published with: its name, except an
    import request, routed by its payload's state. shared.nameko_support's
    publisher applies it to everything it publishes (admin's outbox, `make
    run`'s sample imports): publish import requests with it, never with
    nameko's EventDispatcher, which would send the plain event name that no
    queue is bound to any more."""
    if event_type != IMPORT_REQUESTED:
        return event_type
    state = payload.get("state")
    if not state:
        raise ValueError(f"an import request names its state: {payload}")
    return import_routing_key(state)


def validated(event_type: str, payload: dict) -> dict:
    """The payload as its schema loads it; raises ValidationError when it is off."""
    return SCHEMAS[event_type]().load(payload)


__all__ = ["SCHEMAS", "ValidationError", "import_routing_key", "routing_key", "validated"]
