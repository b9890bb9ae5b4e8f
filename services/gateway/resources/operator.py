"""The operator API under /admin/api/: each route checks that a bearer token
was sent and passes its SHA-256 to the admin service over RPC, which checks
it, validates the body and answers (or raises one of shared/operator.py's
errors, which errors.py renders).

A route with a body has admin check the token before it reads a byte of
the body: a wrong token is a 403 whatever follows it, never a 413 or a 400
that would make the gateway read or parse what a stranger sent. A wrong
token is reported to the guard against guessing (operator_guard.py).
"""

from __future__ import annotations

import json

import falcon

from services.gateway.errors import PayloadTooLarge, Unauthorized
from services.gateway.operator_guard import token_refused
from shared.operator import Forbidden, InvalidInput, NotFound, token_digest

MAX_CSV_BYTES = 8 * 1024 * 1024
# A dataset or a census request is a few hundred bytes: a bigger body is
# refused unread (413), before anything ships it to the admin service.
MAX_JSON_BYTES = 64 * 1024
# Admin's call that checks the token and nothing else (no argument that could
# be refused first, nothing read or sent back); the sign-in page checks a
# token the same way.
TOKEN_CHECK = "check_token"
# PostgreSQL's text cannot hold the NUL character: a value with one would
# make admin's query fail (a 500), so it is refused here as a bad field.
NUL_REFUSED = "must not contain the NUL character (\\u0000)"


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
    with_nul = {name: NUL_REFUSED for name, value in body.items()
                if isinstance(value, str) and "\x00" in value}
    if with_nul:
        raise InvalidInput(with_nul)
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
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput({"body": f"must be UTF-8 text (byte {error.start} is not)"}) \
            from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidInput({"body": f"line {line}: {NUL_REFUSED}"})
    return text


class OperatorResource:
    def __init__(self, admin):
        self.admin = admin

    def call(self, req, method: str, *args):
        """Admin's answer, for a route that reads no body."""
        return self.ask(req, method, _digest(req), *args)

    def checked_digest(self, req) -> str:
        """The token's digest once admin has accepted it: what a route with a
        body asks for before reading the body."""
        digest = _digest(req)
        self.ask(req, TOKEN_CHECK, digest)
        return digest

    def ask(self, req, method: str, digest: str, *args):
        try:
            return self.admin.call(method, digest, *args)
        except Forbidden:
            token_refused(req)
            raise


class Datasets(OperatorResource):
    def on_get(self, req, resp) -> None:
        resp.media = self.call(req, "list_datasets")

    def on_post(self, req, resp) -> None:
        digest = self.checked_digest(req)
        resp.media = self.ask(req, "add_dataset", digest, _json_body(req))
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
        digest = self.checked_digest(req)
        resp.media = self.ask(req, "put_agency_mapping", digest, state, _csv_body(req))


class StopReasons(OperatorResource):
    def on_get(self, req, resp, state: str) -> None:
        resp.text = self.call(req, "get_stop_reasons", state)
        resp.content_type = "text/csv; charset=utf-8"

    def on_put(self, req, resp, state: str) -> None:
        digest = self.checked_digest(req)
        resp.media = self.ask(req, "put_stop_reasons", digest, state, _csv_body(req))


class CensusRefresh(OperatorResource):
    def on_post(self, req, resp) -> None:
        digest = self.checked_digest(req)
        resp.media = self.ask(req, "request_census_refresh", digest,
                              _json_body(req, optional=True))
        resp.status = falcon.HTTP_202
        resp.location = f"/admin/api/census/refresh/{resp.media['request_id']}/"


class CensusRefreshRecord(OperatorResource):
    def on_get(self, req, resp, request_id: str) -> None:
        if "\x00" in request_id:
            # Admin's request ids are hex digits; the database could not even
            # compare this one (NUL_REFUSED).
            self.checked_digest(req)
            raise NotFound(f"there is no census refresh {request_id}")
        resp.media = self.call(req, "get_census_refresh", request_id)
