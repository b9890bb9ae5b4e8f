"""The OpenAPI 3 document of the gateway, built from the route list and the
marshmallow schemas the resources validate their queries with, so it
cannot drift from what the code accepts."""

from __future__ import annotations

import re

from marshmallow import fields, missing
from marshmallow.validate import OneOf, Range

from services.gateway.routes import Route
from shared.operator import DatasetIn
from shared.states import STATES

DOCUMENT_PATH = "/openapi.json"
OPERATOR_PREFIX = "/admin/api/"
FIELD = re.compile(r"\{(\w+)(?::(\w+)[^}]*)?\}")

ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_RESPONSES = {
    "400": "A query parameter breaks its rule; the description names it",
    "404": "Unknown state, agency or path, or a state without this route or data yet",
    "503": "A backing service is down",
}


NUMBER = {"type": "number", "nullable": True}
COUNT = {"type": "integer", "minimum": 0}
# Bodies of the analytics (API.md, "Analytics"), referred to by the resources.
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
}
ROWS = {"type": "array", "items": {"$ref": "#/components/schemas/CountRow"}}


def _field_schema(field: fields.Field) -> dict:
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
        elif isinstance(validator, Range) and schema["type"] == "integer":
            schema.update(minimum=validator.min, maximum=validator.max)
    if "pattern" in field.metadata:
        schema["pattern"] = field.metadata["pattern"]
    default = field.load_default
    if default is not missing and default is not None and not callable(default):
        schema["default"] = default
    return schema


def _query_parameters(resource) -> list[dict]:
    query = getattr(resource, "query", None)
    if query is None:
        return []
    return [{"name": name, "in": "query", "required": field.required,
             "description": field.metadata.get("description", ""),
             "schema": _field_schema(field),
             **({"explode": True} if isinstance(field, fields.List) else {})}
            for name, field in ((field.data_key or name, field)
                                for name, field in query().fields.items())]


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


def _operation(route: Route) -> dict:
    parameters = (_path_parameters(route.template, route.resource)
                  + _query_parameters(route.resource))
    described = getattr(route.resource, "response_schema", None)
    content = {"application/json": {"schema": described()} if described else {}}
    if getattr(route.resource, "csv", False):
        content["text/csv"] = {"schema": {"type": "string"}}
    responses = {"200": {"description": "OK", "content": content}}
    if "{state}" in route.template:
        responses["304"] = {"description": "Not modified since the ETag given"}
        for status, description in ERROR_RESPONSES.items():
            if status != "400" or any(p["in"] == "query" for p in parameters):
                responses[status] = {"description": description,
                                     "content": {"application/json": {"schema": ERROR}}}
    elif route.template == "/readyz":
        responses["503"] = {"description": ERROR_RESPONSES["503"],
                            "content": {"application/json": {"schema": ERROR}}}
    return {"summary": route.summary, "parameters": parameters, "responses": responses}


OPERATOR_RESPONSES = {
    "400": "A field of the request breaks its rule; `errors` names each",
    "401": "No bearer token was sent",
    "403": "The bearer token is not an operator's",
    "404": "No such dataset, import or state",
    "409": "The name or URL is already used by another dataset, or the dataset already has "
           "an import under way",
    "503": "The admin service, the broker or the database is down",
}
OPERATOR_SUCCESS = {("post", "Datasets"): "201", ("post", "DatasetImport"): "202",
                    ("post", "CensusRefresh"): "202"}
REQUEST_BODIES = {
    "Datasets": {"application/json": {"schema": {"$ref": "#/components/schemas/DatasetIn"}}},
    "AgencyMapping": {"text/csv": {"schema": {"type": "string",
                                              "description": "header row code,name,geoid"}}},
    "StopReasons": {"text/csv": {"schema": {"type": "string",
                                            "description": "header row stem,purpose"}}},
    "CensusRefresh": {"application/json": {"schema": {
        "type": "object", "properties": {"year": {"type": "integer"}}}}},
}


def _operator_operation(route: Route, method: str) -> dict:
    kind = type(route.resource).__name__
    success = OPERATOR_SUCCESS.get((method, kind), "200")
    operation = {
        "summary": route.summary,
        "security": [{"operatorToken": []}],
        "parameters": _path_parameters(route.template, route.resource),
        "responses": {success: {"description": "OK", "content": {"application/json": {}}},
                      **{status: {"description": description,
                                  "content": {"application/json": {"schema": ERROR}}}
                         for status, description in OPERATOR_RESPONSES.items()}},
    }
    if method in ("post", "put") and kind in REQUEST_BODIES:
        operation["requestBody"] = {"required": method == "put" or kind == "Datasets",
                                    "content": REQUEST_BODIES[kind]}
    return operation


def _methods(resource) -> list[str]:
    return [method for method in ("get", "post", "put") if hasattr(resource, f"on_{method}")]


def _schema_of(schema) -> dict:
    properties = {name: _field_schema(field) for name, field in schema.fields.items()}
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
        "200": {"description": "OK", "content": {"application/json": {}}}}}}
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
                "DatasetIn": _schema_of(DatasetIn()),
                **RESPONSE_SCHEMAS,
            },
            "securitySchemes": {"operatorToken": {"type": "http", "scheme": "bearer"}},
        },
    }
