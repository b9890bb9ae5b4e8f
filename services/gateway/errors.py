"""Domain errors and the one table that turns them into HTTP responses.

Resources and middleware raise `BadParameter`, `NotFound`, `Unavailable`,
`Unauthorized` or `TooManyAttempts`; the admin service's errors
(shared/operator.py) come back from the operator routes' calls. `install`
registers the handlers that render every error, Falcon's own included, as
`{"title": ..., "description": ...}`. Nothing else builds an error
response, and no stack trace or SQL text ever reaches a client.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

import falcon
from sqlalchemy import exc as sa_exc

from shared.operator import InvalidInput, OperatorError

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """An error a client is told about, with a description it can act on
    and, where it helps, more fields for the body (`details`)."""

    def __init__(self, description: str, details: dict | None = None):
        super().__init__(description)
        self.description = description
        self.details = details or {}


class BadParameter(GatewayError):
    """One or more query parameters break their rule: {name: what is allowed}."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems.items()))
        self.problems = problems


class NotFound(GatewayError):
    pass


class Unavailable(GatewayError):
    pass


class Unauthorized(GatewayError):
    """No bearer token: the operator API's 401."""


class PayloadTooLarge(GatewayError):
    pass


class TooManyAttempts(GatewayError):
    """Too many wrong operator tokens from the client lately: the 429, with
    the whole seconds until it may try again (its Retry-After)."""

    def __init__(self, description: str, retry_after: int):
        super().__init__(description)
        self.retry_after = retry_after


ERROR_STATUSES: dict[type[GatewayError], int] = {
    BadParameter: 400,
    NotFound: 404,
    Unavailable: 503,
    Unauthorized: 401,
    PayloadTooLarge: 413,
    TooManyAttempts: 429,
}

# What a client reads when Falcon itself refuses a request (no route, wrong
# method) and gave no description of its own.
DEFAULT_DESCRIPTIONS = {
    404: "there is no such path; see /openapi.json",
    405: "this path does not accept that method",
    500: "the server failed to answer; the error was logged",
}


def _status_of(error: GatewayError) -> int:
    for kind in type(error).__mro__:
        if kind in ERROR_STATUSES:
            return ERROR_STATUSES[kind]
    return 500


class RenderedError(falcon.HTTPError):
    """Falcon's HTTPError carrying a domain error's extra body fields."""

    def __init__(self, status: int, description: str, details: dict, headers=None):
        super().__init__(status, description=description, headers=headers)
        self.details = details


def handle_gateway_error(req, resp, error: GatewayError, params) -> None:
    headers = None
    if isinstance(error, Unauthorized):
        headers = {"WWW-Authenticate": 'Bearer realm="operator API"'}
    elif isinstance(error, TooManyAttempts):
        headers = {"Retry-After": str(error.retry_after)}
    raise RenderedError(_status_of(error), error.description, error.details, headers)


def handle_operator_error(req, resp, error: OperatorError, params) -> None:
    """The admin service's answer to an operator call (shared/operator.py);
    a 400 lists each bad field."""
    details = {"errors": error.problems} if isinstance(error, InvalidInput) else {}
    raise RenderedError(error.status, error.message, details)


def handle_database_error(req, resp, error: sa_exc.SQLAlchemyError, params) -> None:
    """A lost or refused connection is an outage (503); anything else is a
    bug on our side, logged here and reported without its SQL."""
    outage = isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError
                        | sa_exc.TimeoutError | sa_exc.DisconnectionError) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated)
    if outage:
        log.warning("database unavailable: %s", error.__class__.__name__)
        handle_gateway_error(req, resp, Unavailable("database unavailable"), params)
    log.exception("database error answering %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(description=DEFAULT_DESCRIPTIONS[500])


def handle_unexpected(req, resp, error: Exception, params) -> None:
    log.exception("unexpected error answering %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(description=DEFAULT_DESCRIPTIONS[500])


def serialize_error(req, resp, error: falcon.HTTPError) -> None:
    """Every error as JSON with a plain reason phrase as its title; on the
    website's pages, the same as a page."""
    from services.gateway.web.rendering import environment, is_page

    status = error.status_code
    body = {"title": HTTPStatus(status).phrase,
            "description": error.description or DEFAULT_DESCRIPTIONS.get(status, "")}
    if is_page(req):
        resp.text = environment.get_template("error.html").render(**body)
        resp.content_type = "text/html; charset=utf-8"
        return
    body.update(getattr(error, "details", {}))
    resp.data = json.dumps(body).encode()
    resp.content_type = falcon.MEDIA_JSON


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(sa_exc.SQLAlchemyError, handle_database_error)
    app.add_error_handler(GatewayError, handle_gateway_error)
    app.add_error_handler(OperatorError, handle_operator_error)
    app.set_error_serializer(serialize_error)
