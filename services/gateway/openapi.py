"""The OpenAPI 3 document of the gateway, built from the route list and the
marshmallow schemas the resources validate their queries with, so it
cannot drift from what the code accepts. Every answer is declared, errors
included, so a client (and tests/test_openapi_schemathesis.py) can check a
response against it."""

from __future__ import annotations

import re
from http import HTTPStatus

from marshmallow import fields, missing
from marshmallow.validate import Length, OneOf, Range

from services.gateway.routes import Route
from shared.operator import IMPORT_STATUSES, CensusRefresh, DatasetIn, ImportFilter
from shared.states import GENDERS, NC_ETHNICITIES, NC_RACES, STATES, KnownState

DOCUMENT_PATH = "/openapi.json"
OPERATOR_PREFIX = "/admin/api/"
FIELD = re.compile(r"\{(\w+)(?::(\w+)[^}]*)?\}")


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = ref("Error")
ERROR_RESPONSES = {
    "400": "A query parameter breaks its rule; the description names it",
    "404": "Unknown state, agency or path, or a state without this route or data yet",
    "503": "A backing service is down",
}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


NUMBER = {"type": "number", "nullable": True}
COUNT = {"type": "integer", "minimum": 0}
TEXT = {"type": "string"}
MAYBE_TEXT = _nullable(TEXT)
MOMENT = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "format": "date"}
PROFILE_KEYS = ("white", "black", "native_american", "asian", "other", "hispanic",
                "non_hispanic", "total")


def _object(properties: dict) -> dict:
    """An object with every one of `properties` (more may come)."""
    return {"type": "object", "required": list(properties), "properties": properties}


# Bodies of the answers, referred to by the resources and the tables below.
RESPONSE_SCHEMAS = {
    "Interval": {"type": "object", "nullable": True, "required": ["value", "low", "high"],
                 "properties": {"value": NUMBER, "low": NUMBER, "high": NUMBER}},
    "CountRow": {"type": "object", "description": "year (or month as YYYY-MM), the group "
                 "label when grouped, then the counts",
                 "properties": {"year": {"type": "integer"},
                                "month": {"type": "string", "pattern": "^\\d{4}-\\d{2}$"}},
                 "additionalProperties": {"oneOf": [COUNT, {"type": "string"}]}},
    "Disparities": {"type": "object", "required": ["reference", "confidence", "groups"],
                    "properties": {
                        "reference": {"type": "string"}, "confidence": {"type": "number"},
                        "groups": {"type": "array", "items": {
                            "type": "object", "properties": {
                                "group": {"type": "string"}, "stops": COUNT,
                                "searches": COUNT, "hits": COUNT,
                                "population": {"type": "integer", "nullable": True},
                                **{name: {"$ref": "#/components/schemas/Interval"}
                                   for name in ("search_rate", "search_rate_ratio",
                                                "hit_rate", "hit_rate_ratio",
                                                "stop_rate_ratio")}}}}}},
    "Officers": {"type": "object",
                 "required": ["group", "reference", "min_stops", "officers"],
                 "properties": {
                     "group": {"type": "string"}, "reference": {"type": "string"},
                     "min_stops": COUNT,
                     "agency_search_rate_ratio": {"$ref": "#/components/schemas/Interval"},
                     "officers": {"type": "array", "items": {
                         "type": "object", "properties": {
                             "officer": {"type": "string"}, "stops": COUNT,
                             "group_stops": COUNT, "group_searches": COUNT,
                             "reference_stops": COUNT, "reference_searches": COUNT,
                             "search_rate_ratio": {"$ref": "#/components/schemas/Interval"},
                             "p_value": {"type": "number"}, "q_value": {"type": "number"},
                             "flagged": {"type": "boolean"}}}}}},
    "AgencyName": _object({"id": {"type": "integer"}, "name": TEXT}),
    "Agency": _object({"id": {"type": "integer"}, "name": TEXT, "census_profile": {
        "type": "object", "description": "{} when the agency has no census profile",
        "properties": {key: {"type": "integer"} for key in PROFILE_KEYS},
        "additionalProperties": False}}),
    "Facts": _object({
        "state": TEXT, "start_date": MAYBE_TEXT, "end_date": MAYBE_TEXT,
        "total_stops": COUNT, "total_stops_millions": COUNT, "total_searches": COUNT,
        "total_agencies": COUNT,
        "top_agencies": {"type": "array", "items": _object({
            "rank": {"type": "integer", "minimum": 1}, "id": {"type": "integer"},
            "name": TEXT, "stops": COUNT})},
        "updated_at": TEXT}),
    "StopsPage": _object({
        "page": {"type": "integer", "minimum": 1},
        "page_size": {"type": "integer", "minimum": 1},
        "has_next": {"type": "boolean"},
        "results": {"type": "array", "items": _object({
            "stop_id": {"type": "integer"}, "date": MOMENT, "agency_id": {"type": "integer"},
            "agency": TEXT, "officer_id": MAYBE_TEXT, "purpose": MAYBE_TEXT,
            "action": MAYBE_TEXT,
            "driver": _nullable(_object({
                "age": {"type": "integer", "nullable": True},
                "gender": {"type": "string", "nullable": True, "enum": [*GENDERS, None]},
                "race": {"type": "string", "enum": list(NC_RACES)},
                "ethnicity": {"type": "string", "enum": list(NC_ETHNICITIES)}})),
            "searched": {"type": "boolean"}})}}),
    "Health": _object({"status": {"type": "string", "enum": ["ok"]}}),
    "Readiness": _object({"status": {"type": "string", "enum": ["ok", "degraded"]},
                          "checks": {"type": "object", "additionalProperties": {
                              "type": "string", "enum": ["up", "down"]}}}),
    "Dataset": _object({
        "id": {"type": "integer"}, "state": TEXT, "name": TEXT, "date_added": DAY,
        "date_received": DAY, "url": TEXT, "destination": MAYBE_TEXT,
        "report_email_1": MAYBE_TEXT, "report_email_2": MAYBE_TEXT}),
    "Import": _object({
        "id": {"type": "integer"}, "dataset_id": {"type": "integer", "nullable": True},
        "dataset": TEXT, "state": TEXT,
        "status": {"type": "string", "enum": list(IMPORT_STATUSES)}, "phase": MAYBE_TEXT,
        "progress": _object({"done": COUNT, "total": _nullable(COUNT)}),
        "requested_at": MOMENT, "started_at": _nullable(MOMENT),
        "finished_at": _nullable(MOMENT), "counts": {"type": "object"},
        "rejected_rows": COUNT, "new_agencies": {"type": "array"}, "error": MAYBE_TEXT}),
    "ImportQueued": _object({"import_id": {"type": "integer"},
                             "status": {"type": "string", "enum": list(IMPORT_STATUSES)}}),
    "AgencyMappingRow": _object({"code": TEXT, "name": TEXT, "geoid": MAYBE_TEXT}),
    "AgencyMappingReplaced": _object({"state": TEXT, "rows": COUNT}),
    "StopReasonsReplaced": _object({"state": TEXT, "stems": COUNT}),
    "CensusRefresh": _object({
        "request_id": TEXT,
        "years": {"type": "array", "nullable": True, "items": {"type": "integer"}},
        "status": {"type": "string", "enum": ["requested", "loaded", "failed"]},
        "requested_at": MOMENT, "finished_at": _nullable(MOMENT),
        "profiles": _nullable(COUNT), "error": MAYBE_TEXT}),
    "Document": {"type": "object", "required": ["openapi", "info", "paths"]},
}
ROWS = {"type": "array", "items": {"$ref": "#/components/schemas/CountRow"}}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _error(status: str, description: str, schema: dict = ERROR) -> dict:
    """An error answer: the Error body titled with the status's reason phrase."""
    title = {"properties": {"title": {"type": "string",
                                      "enum": [HTTPStatus(int(status)).phrase]}}}
    response = {"description": description, "content": _json({"allOf": [schema, title]})}
    if status == "401":
        response["headers"] = {"WWW-Authenticate": {
            "required": True, "description": "Bearer, naming the operator API's realm",
            "schema": {"type": "string", "pattern": "^Bearer "}}}
    elif status == "429":
        response["headers"] = {"Retry-After": {
            "required": True, "description": "Whole seconds until the client may try again",
            "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}}}
    return response


# The answers of the resources that declare none themselves (response_schema).
SUCCESS_BODIES = {
    "AgencyList": {"type": "array", "items": ref("AgencyName")},
    "Agency": ref("Agency"),
    "Facts": ref("Facts"),
    "FindStops": ref("StopsPage"),
    "Health": ref("Health"),
    "Readiness": ref("Readiness"),
}


def _field_schema(field: fields.Field, body: bool = False) -> dict:
    """`body`: a field of a JSON body, where null may be sent; a query
    parameter is absent instead."""
    if isinstance(field, fields.List):
        return {"type": "array", "items": _field_schema(field.inner)}
    if isinstance(field, fields.Integer):
        schema = {"type": "integer"}
    elif isinstance(field, fields.Email):
        schema = {"type": "string", "format": "email"}
    elif isinstance(field, fields.Date):
        schema = {"type": "string", "format": "date"}
    else:
        schema = {"type": "string"}
    for validator in field.validators:
        if isinstance(validator, OneOf):
            schema["enum"] = list(validator.choices)
        elif isinstance(validator, KnownState):
            schema["enum"] = list(STATES)
        elif isinstance(validator, Range) and schema["type"] == "integer":
            schema.update({key: value for key, value in (("minimum", validator.min),
                                                         ("maximum", validator.max))
                           if value is not None})
        elif isinstance(validator, Length) and schema["type"] == "string":
            schema.update({key: value for key, value in (("minLength", validator.min),
                                                         ("maxLength", validator.max))
                           if value is not None})
    if "pattern" in field.metadata:
        schema["pattern"] = field.metadata["pattern"]
    default = field.load_default
    if default is not missing and default is not None and not callable(default):
        schema["default"] = default
    if body and field.allow_none:
        schema["nullable"] = True
    return schema


def _parameters_of(schema) -> list[dict]:
    return [{"name": name, "in": "query", "required": field.required,
             "description": field.metadata.get("description", ""),
             "schema": _field_schema(field),
             **({"explode": True} if isinstance(field, fields.List) else {})}
            for name, field in ((field.data_key or name, field)
                                for name, field in schema().fields.items())]


def _query_parameters(resource) -> list[dict]:
    query = getattr(resource, "query", None)
    return [] if query is None else _parameters_of(query)


def _path_parameters(template: str, resource) -> list[dict]:
    parameters = []
    for name, converter in FIELD.findall(template):
        if name == "state":
            schema = {"type": "string", "enum": list(getattr(resource, "states", STATES))}
        else:
            schema = ({"type": "integer", "minimum": 1} if converter == "int"
                      else {"type": "string"})
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


CSV_HEADERS = {"Content-Disposition": {
    "description": 'attachment; filename="{state}-{agency id or statewide}-{endpoint}.csv"',
    "schema": {"type": "string"}}}


def _operation(route: Route) -> dict:
    parameters = (_path_parameters(route.template, route.resource)
                  + _query_parameters(route.resource))
    kind = type(route.resource).__name__
    described = getattr(route.resource, "response_schema", None)
    body = described() if described else SUCCESS_BODIES[kind]
    responses = {"200": {"description": "OK", "content": _json(body)}}
    if getattr(route.resource, "csv", False):
        responses["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
        responses["200"]["headers"] = CSV_HEADERS
    if "{state}" in route.template:
        responses["304"] = {"description": "Not modified since the ETag given"}
        for status, description in ERROR_RESPONSES.items():
            if status != "400" or any(p["in"] == "query" for p in parameters):
                responses[status] = _error(status, description)
    elif kind == "Readiness":
        responses["503"] = _error("503", "The database is down; `checks` says what is up",
                                  ref("Unready"))
    return {"summary": route.summary, "parameters": parameters, "responses": responses}


OPERATOR_RESPONSES = {
    "400": "A field of the request breaks its rule; `errors` names each",
    "401": "No bearer token was sent",
    "403": "The bearer token is not an operator's",
    "404": "No such dataset, import or state",
    "409": "The name or URL is already used by another dataset, or the dataset already has "
           "an import under way",
    "413": "The body is larger than the route takes (JSON 64 KB, CSV 8 MB), refused unread",
    "429": "Too many wrong tokens from this client; try again later",
    "503": "The admin service, the broker or the database is down",
}
MAPPING_CSV = {"text/csv": {"schema": {"type": "string",
                                       "description": "header row code,name,geoid"}}}
STOP_REASONS_CSV = {"text/csv": {"schema": {"type": "string",
                                            "description": "header row stem,purpose"}}}
# (method, resource) -> (status, content) of a success.
OPERATOR_SUCCESS = {
    ("get", "Datasets"): ("200", _json({"type": "array", "items": ref("Dataset")})),
    ("post", "Datasets"): ("201", _json(ref("Dataset"))),
    ("get", "Dataset"): ("200", _json(ref("Dataset"))),
    ("post", "DatasetImport"): ("202", _json(ref("ImportQueued"))),
    ("get", "Imports"): ("200", _json({"type": "array", "items": ref("Import")})),
    ("get", "Import"): ("200", _json(ref("Import"))),
    ("get", "AgencyMapping"): ("200", _json({"type": "array",
                                             "items": ref("AgencyMappingRow")})),
    ("put", "AgencyMapping"): ("200", _json(ref("AgencyMappingReplaced"))),
    ("get", "StopReasons"): ("200", STOP_REASONS_CSV),
    ("put", "StopReasons"): ("200", _json(ref("StopReasonsReplaced"))),
    ("post", "CensusRefresh"): ("202", _json(ref("CensusRefresh"))),
    ("get", "CensusRefreshRecord"): ("200", _json(ref("CensusRefresh"))),
}
# Which errors other than 401, 403, 429 and 503 (every call's) each call can
# answer: a 400 is a bad field or body, a 404 an unknown id or state in the path.
OPERATOR_ERRORS = {
    ("post", "Datasets"): ("400", "409", "413"),
    ("get", "Dataset"): ("404",),
    ("post", "DatasetImport"): ("404", "409"),
    ("get", "Imports"): ("400",),
    ("get", "Import"): ("404",),
    ("get", "AgencyMapping"): ("404",),
    ("put", "AgencyMapping"): ("400", "404", "413"),
    ("get", "StopReasons"): ("404",),
    ("put", "StopReasons"): ("400", "404", "413"),
    ("post", "CensusRefresh"): ("400", "413"),
    ("get", "CensusRefreshRecord"): ("404",),
}
# The call's Location header: where the new record is read.
CREATED_AT = {("post", "Datasets"), ("post", "DatasetImport"), ("post", "CensusRefresh")}
OPERATOR_QUERIES = {"Imports": ImportFilter}
# ImportFilter's fields describe nothing themselves (admin's schema, not the API's).
QUERY_DESCRIPTIONS = {"state": "Only this state's imports",
                      "status": "Only the imports with this status",
                      "limit": "At most this many imports, newest first"}
REQUEST_BODIES = {
    "Datasets": _json(ref("DatasetIn")),
    "AgencyMapping": MAPPING_CSV,
    "StopReasons": STOP_REASONS_CSV,
    "CensusRefresh": _json(ref("CensusRefreshIn")),
}


def _operator_operation(route: Route, method: str) -> dict:
    kind = type(route.resource).__name__
    status, content = OPERATOR_SUCCESS[(method, kind)]
    success = {"description": HTTPStatus(int(status)).phrase, "content": content}
    if (method, kind) in CREATED_AT:
        success["headers"] = {"Location": {"required": True, "schema": {"type": "string"}}}
    errors = (*OPERATOR_ERRORS.get((method, kind), ()), "401", "403", "429", "503")
    operation = {
        "summary": route.summary,
        "security": [{"operatorToken": []}],
        "parameters": (_path_parameters(route.template, route.resource)
                       + [{**parameter, "description": QUERY_DESCRIPTIONS[parameter["name"]]}
                          for parameter in (_parameters_of(OPERATOR_QUERIES[kind])
                                            if kind in OPERATOR_QUERIES else [])]),
        "responses": {status: success,
                      **{error: _error(error, OPERATOR_RESPONSES[error],
                                       ref("InvalidInput") if error == "400" else ERROR)
                         for error in sorted(errors)}},
    }
    if method in ("post", "put") and kind in REQUEST_BODIES:
        operation["requestBody"] = {"required": method == "put" or kind == "Datasets",
                                    "content": REQUEST_BODIES[kind]}
    return operation


def _methods(resource) -> list[str]:
    return [method for method in ("get", "post", "put") if hasattr(resource, f"on_{method}")]


def _schema_of(schema) -> dict:
    properties = {name: _field_schema(field, body=True) for name, field in schema.fields.items()}
    return {"type": "object", "properties": properties,
            "required": [name for name, field in schema.fields.items() if field.required],
            "additionalProperties": False}


def document(routes: list[Route]) -> dict:
    paths = {}
    for route in routes:
        path = FIELD.sub(r"{\1}", route.template)
        if route.template.startswith(OPERATOR_PREFIX):
            paths[path] = {method: _operator_operation(route, method)
                           for method in _methods(route.resource)}
        else:
            paths[path] = {"get": _operation(route)}
    paths[DOCUMENT_PATH] = {"get": {"summary": "This document", "responses": {
        "200": {"description": "OK", "content": _json(ref("Document"))}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Open Data Policing API", "version": "1.0"},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["title", "description"],
                    "properties": {"title": {"type": "string"},
                                   "description": {"type": "string"},
                                   "errors": {"type": "object"}},
                },
                "InvalidInput": {"allOf": [ERROR, {
                    "required": ["errors"],
                    "properties": {"errors": {
                        "type": "object", "description": "each bad field with its message",
                        "additionalProperties": {"type": "string"}}}}]},
                "Unready": {"allOf": [ERROR, {
                    "required": ["checks"],
                    "properties": {"checks": RESPONSE_SCHEMAS["Readiness"]["properties"][
                        "checks"]}}]},
                "DatasetIn": _schema_of(DatasetIn()),
                "CensusRefreshIn": _schema_of(CensusRefresh()),
                **RESPONSE_SCHEMAS,
            },
            "securitySchemes": {"operatorToken": {"type": "http", "scheme": "bearer"}},
        },
    }
