"""The operator API under /admin/api/: each route checks that a bearer token
was sent and passes its SHA-256 to the admin service over RPC, which checks
it, validates the body and answers (or raises one of shared/operator.py's
errors, which errors.py renders).
"""

from __future__ import annotations

import json

import falcon

from services.gateway.errors import PayloadTooLarge, Unauthorized
from shared.operator import InvalidInput, token_digest

MAX_CSV_BYTES = 8 * 1024 * 1024
# A dataset or a census request is a few hundred bytes: a bigger body is
# refused unread (413), before anything ships it to the admin service.
MAX_JSON_BYTES = 64 * 1024


def _digest(req) -> str:
    scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send the operator token as 'Authorization: Bearer <token>'")
    return token_digest(token.strip())


def _json_body(req, optional: bool = False) -> dict:
    """The body's JSON object, read at most MAX_JSON_BYTES; with `optional`
    an empty body is {}."""
    raw = _read_capped(req, MAX_JSON_BYTES,
                       f"the JSON body is larger than {MAX_JSON_BYTES // 1024} KB")
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        # Python's parser recurses once per level: [[[[...]]]] would be a 500.
        raise InvalidInput({"body": "is nested too deeply"}) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidInput({"body": f"must be JSON ({error})"}) from None
    if not isinstance(body, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    return body


def _read_capped(req, limit: int, too_large: str) -> bytes:
    """The body, at most `limit` bytes: refused (413) from its declared
    length before reading, or once it runs past the limit."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(too_large)
    raw = req.bounded_stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(too_large)
    return raw


def _csv_body(req) -> str:
    raw = _read_capped(req, MAX_CSV_BYTES,
                       f"the CSV body is larger than {MAX_CSV_BYTES // 2**20} MB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput({"body": f"must be UTF-8 text (byte {error.start} is not)"}) \
            from None


class OperatorResource:
    def __init__(self, admin):
        self.admin = admin

    def call(self, req, method: str, *args):
        return self.admin.call(method, _digest(req), *args)


class Datasets(OperatorResource):
    def on_get(self, req, resp) -> None:
        resp.media = self.call(req, "list_datasets")

    def on_post(self, req, resp) -> None:
        digest = _digest(req)
        resp.media = self.admin.call("add_dataset", digest, _json_body(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/admin/api/datasets/{resp.media['id']}/"


class Dataset(OperatorResource):
    def on_get(self, req, resp, dataset_id: int) -> None:
        resp.media = self.call(req, "get_dataset", dataset_id)


class DatasetImport(OperatorResource):
    def on_post(self, req, resp, dataset_id: int) -> None:
        record = self.call(req, "request_import", dataset_id)
        resp.media = {"import_id": record["id"], "status": record["status"]}
        resp.status = falcon.HTTP_202
        resp.location = f"/admin/api/imports/{record['id']}/"


class Imports(OperatorResource):
    def on_get(self, req, resp) -> None:
        query = {name: req.get_param(name) for name in ("state", "status", "limit")
                 if req.get_param(name)}
        resp.media = self.call(req, "list_imports", query)


class Import(OperatorResource):
    def on_get(self, req, resp, import_id: int) -> None:
        resp.media = self.call(req, "get_import", import_id)


class AgencyMapping(OperatorResource):
    def on_get(self, req, resp, state: str) -> None:
        rows = self.call(req, "get_agency_mapping", state)
        resp.media = rows

    def on_put(self, req, resp, state: str) -> None:
        digest = _digest(req)
        resp.media = self.admin.call("put_agency_mapping", digest, state, _csv_body(req))


class StopReasons(OperatorResource):
    def on_get(self, req, resp, state: str) -> None:
        resp.text = self.call(req, "get_stop_reasons", state)
        resp.content_type = "text/csv; charset=utf-8"

    def on_put(self, req, resp, state: str) -> None:
        digest = _digest(req)
        resp.media = self.admin.call("put_stop_reasons", digest, state, _csv_body(req))


class CensusRefresh(OperatorResource):
    def on_post(self, req, resp) -> None:
        digest = _digest(req)
        resp.media = self.admin.call("request_census_refresh", digest,
                                     _json_body(req, optional=True))
        resp.status = falcon.HTTP_202
        resp.location = f"/admin/api/census/refresh/{resp.media['request_id']}/"


class CensusRefreshRecord(OperatorResource):
    def on_get(self, req, resp, request_id: str) -> None:
        resp.media = self.call(req, "get_census_refresh", request_id)
