"""The operator pages under /admin/: sign in with the operator token, then
register datasets, start and follow imports, upload the agency mapping and
Maryland's stop reasons, and ask for a census refresh. Every call goes to
the admin service with the token's SHA-256, which admin checks each time,
as the operator API does (services/gateway/resources/operator.py).

The session. Signing in checks the token with admin, then sets the cookie

    odp_session = <token sha256>.<expiry, unix seconds>.<HMAC-SHA256(web secret,
                  "session:<token sha256>.<expiry>"), hex>

HttpOnly, SameSite=Strict, Path=/admin, Secure when the request came over
https, for SESSION_SECONDS. The token itself is never kept: not in a cookie,
a URL or the browser's storage.

Before a signed-in form is read, admin checks the session's token: a
session whose token was withdrawn is sent to sign in with its form unread.
The sign-in form carries its token in the body, so it is read first (16 KB
at most); a wrong token there counts against the client's address like one
sent to the operator API, and a client past the limit is refused (429)
before any of its operator requests is read (services/gateway/operator_guard.py).

Forms. Every POST is refused (403, nothing done) when its Origin header
names another host, or when its `csrf` field is wrong: after sign-in
HMAC-SHA256(web secret, "csrf:" + the session cookie's value); on the
sign-in form a double-submit token, a random nonce (signed) set in the
SameSite=Strict cookie `odp_csrf` and repeated in the form.

The web secret is ODP_WEB_SECRET (config.web_secret). Without one each
process makes a random secret of its own and logs a warning: sessions then
end with the process, and under several gunicorn workers a session signed
by one worker is refused by the others, so a deployment with more than one
worker (or more than one gateway) must set ODP_WEB_SECRET.

Pages are never cached (Cache-Control: no-store) and have no {state}
parameter, so the public response cache leaves them alone.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import falcon

from services.gateway.errors import Unavailable
from services.gateway.operator_guard import token_refused
from services.gateway.resources.operator import MAX_CSV_BYTES, TOKEN_CHECK
from services.gateway.web.rendering import render
from shared.operator import Conflict, Forbidden, InvalidInput, OperatorError, token_digest
from shared.states import STATES

log = logging.getLogger(__name__)

SESSION_COOKIE = "odp_session"
SIGN_IN_COOKIE = "odp_csrf"
COOKIE_PATH = "/admin"
SESSION_SECONDS = 8 * 3600
SIGN_IN_PAGE = "/admin/"
DATASETS_PAGE = "/admin/datasets/"
# A whole posted form: the largest CSV the operator API takes, and the rest.
MAX_FORM_BYTES = MAX_CSV_BYTES + 64 * 1024
SIGN_IN_FORM_BYTES = 16 * 1024
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Signer:
    """HMAC-SHA256 with the web secret: the session cookie's value and the
    forms' csrf tokens."""

    def __init__(self, secret: bytes):
        self.secret = secret

    @classmethod
    def from_config(cls, config) -> Signer:
        secret = config.web_secret
        if len(secret) >= 16 and "CHANGE-ME" not in secret:
            return cls(secret.encode())
        if secret:
            log.error("ODP_WEB_SECRET is too short or still the example's placeholder; "
                      "it is not used")
        log.warning("ODP_WEB_SECRET is not set: the operator pages sign sessions with a random "
                    "secret of this process; sessions end when it stops and are refused by "
                    "other gunicorn workers. Set ODP_WEB_SECRET (the same in every process).")
        return cls(secrets.token_bytes(32))

    def sign(self, purpose: str, text: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()

    def signed(self, purpose: str, text: str, signature: str | None) -> bool:
        return same(self.sign(purpose, text), signature)

    def session_value(self, digest: str, now: float | None = None) -> str:
        expires = int(time.time() if now is None else now) + SESSION_SECONDS
        body = f"{digest}.{expires}"
        return f"{body}.{self.sign('session', body)}"

    def session_digest(self, value: str | None, now: float | None = None) -> str | None:
        """The token digest a session cookie holds; None when it is missing,
        altered or expired."""
        digest, _, rest = (value or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not (SHA256_HEX.match(digest) and expires.isdigit()):
            return None
        if not self.signed("session", f"{digest}.{expires}", signature):
            return None
        if int(expires) <= (time.time() if now is None else now):
            return None
        return digest

    def form_token(self, session_value: str) -> str:
        return self.sign("csrf", session_value)

    def new_sign_in_token(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self.sign('sign-in', nonce)}"

    def sign_in_token_ok(self, value: str | None) -> bool:
        nonce, _, signature = (value or "").partition(".")
        return bool(nonce) and self.signed("sign-in", nonce, signature)


def same(expected: str, given: object) -> bool:
    """Constant-time comparison of two texts (any characters); anything but
    a text is not the same."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def foreign_origin(req) -> bool:
    """Whether the request's Origin header (when sent) names another host."""
    origin = req.get_header("Origin")
    if origin is None:
        return False
    ours = {req.netloc.lower(), (req.forwarded_host or "").lower()}
    return urlsplit(origin.strip()).netloc.lower() not in ours


def set_cookie(req, resp, name: str, value: str, max_age: int | None,
               expires: datetime | None = None) -> None:
    # Secure also behind a proxy that ends TLS and says so (X-Forwarded-Proto).
    secure = "https" in (req.scheme, req.forwarded_scheme)
    resp.set_cookie(name, value, max_age=max_age, expires=expires, path=COOKIE_PATH,
                    http_only=True, same_site="Strict", secure=secure)


def clear_cookie(req, resp, name: str) -> None:
    set_cookie(req, resp, name, "", None, expires=EPOCH)


def no_store(resp) -> None:
    resp.cache_control = ["no-store"]


def see_other(resp, location: str) -> None:
    resp.status = falcon.HTTP_303
    resp.location = location


class FormTooLarge(Exception):
    pass


def read_form(req, limit: int = MAX_FORM_BYTES) -> dict[str, Any]:
    """A posted form's fields: text, or bytes for a file field (multipart).
    Anything that is not a readable form is an empty form (and so fails
    the csrf check)."""
    if (req.content_length or 0) > limit:
        raise FormTooLarge
    kind = (req.content_type or "").partition(";")[0].strip().lower()
    try:
        if kind == falcon.MEDIA_URLENCODED:
            media = req.get_media(default_when_empty={})
            return {name: value[-1] if isinstance(value, list) else value
                    for name, value in media.items()}
        if kind == falcon.MEDIA_MULTIPART:
            fields: dict[str, Any] = {}
            room = limit
            for part in req.get_media():
                data = part.stream.read(room + 1)
                room -= len(data)
                if room < 0:
                    raise FormTooLarge
                fields[part.name] = (data if part.filename is not None
                                     else data.decode("utf-8", "replace"))
            return fields
    except (falcon.MediaMalformedError, falcon.MediaNotFoundError,
            falcon.HTTPBadRequest):
        return {}
    return {}


def text_field(form: dict, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def show_message(resp, status: str, title: str, message: str, csrf: str | None = None) -> None:
    render(resp, "admin_message.html", status, title=title, message=message, csrf=csrf)


def refuse_form(resp) -> None:
    show_message(resp, falcon.HTTP_403, "Form refused",
                 "This form was not sent from this site's own page, or it has expired. "
                 "Nothing was changed. Open the page again and resend the form.")


def show_unavailable(resp, error: Unavailable) -> None:
    show_message(resp, falcon.HTTP_503, "Admin service unavailable",
                 f"The operator pages cannot reach the admin service ({error.description}). "
                 "Nothing was changed; try again in a moment.")


@dataclass
class Visit:
    """A signed-in operator's request: the token digest admin checks, the
    csrf token of the page's forms, and the posted form."""

    admin: Any
    digest: str
    csrf: str
    form: dict = field(default_factory=dict)

    def call(self, method: str, *args):
        return self.admin.call(method, self.digest, *args)

    def show(self, resp, template: str, status: str = falcon.HTTP_200, **context) -> None:
        render(resp, template, status, csrf=self.csrf, **context)


def signed_in(responder):
    """A responder of a signed-in operator, called as
    responder(self, req, resp, visit, **params): without a valid session it
    sends the browser to sign in; a POST from elsewhere or without the
    page's csrf token is refused; the admin's refusals become pages."""

    @functools.wraps(responder)
    def respond(self, req, resp, **params) -> None:
        no_store(resp)
        posted = req.method == "POST"
        if posted and foreign_origin(req):
            return refuse_form(resp)
        value = req.cookies.get(SESSION_COOKIE)
        digest = self.signer.session_digest(value)
        if digest is None:
            if value is not None:
                clear_cookie(req, resp, SESSION_COOKIE)
            return see_other(resp, SIGN_IN_PAGE)
        visit = Visit(self.admin, digest, self.signer.form_token(value))
        try:
            if posted:
                visit.call(TOKEN_CHECK)
                visit.form = read_form(req)
                if not same(visit.csrf, visit.form.get("csrf")):
                    return refuse_form(resp)
            responder(self, req, resp, visit, **params)
        except FormTooLarge:
            show_message(resp, falcon.HTTP_413, "Too large",
                         f"A form may carry at most {MAX_CSV_BYTES // 2**20} MB.", visit.csrf)
        except Unavailable as error:
            show_unavailable(resp, error)
        except Forbidden:
            # The token was withdrawn since sign-in.
            clear_cookie(req, resp, SESSION_COOKIE)
            see_other(resp, SIGN_IN_PAGE)
        except OperatorError as error:
            show_message(resp, falcon.code_to_http_status(error.status), "Not done",
                         error.message, visit.csrf)

    return respond


class OperatorPage:
    def __init__(self, admin, signer: Signer):
        self.admin = admin
        self.signer = signer


class SignIn(OperatorPage):
    """`/admin/`: the operator token, checked by admin, for a session."""

    def on_get(self, req, resp) -> None:
        no_store(resp)
        if self.signer.session_digest(req.cookies.get(SESSION_COOKIE)):
            return see_other(resp, DATASETS_PAGE)
        self._form(req, resp)

    def on_post(self, req, resp) -> None:
        no_store(resp)
        cookie = req.cookies.get(SIGN_IN_COOKIE)
        try:
            # Nobody is signed in yet: a token and a csrf field, no more.
            form = read_form(req, SIGN_IN_FORM_BYTES)
        except FormTooLarge:
            form = {}
        if (foreign_origin(req) or not self.signer.sign_in_token_ok(cookie)
                or not same(cookie, form.get("csrf"))):
            return refuse_form(resp)
        token = text_field(form, "token")
        if not token:
            return self._form(req, resp, falcon.HTTP_400, "Enter your operator token.")
        digest = token_digest(token)
        try:
            self.admin.call(TOKEN_CHECK, digest)
        except Forbidden:
            token_refused(req)
            return self._form(req, resp, falcon.HTTP_403, "That operator token is not valid.")
        except Unavailable as error:
            return show_unavailable(resp, error)
        set_cookie(req, resp, SESSION_COOKIE, self.signer.session_value(digest),
                   SESSION_SECONDS)
        clear_cookie(req, resp, SIGN_IN_COOKIE)
        see_other(resp, DATASETS_PAGE)

    def _form(self, req, resp, status: str = falcon.HTTP_200, problem: str | None = None):
        token = req.cookies.get(SIGN_IN_COOKIE)
        if not self.signer.sign_in_token_ok(token):
            token = self.signer.new_sign_in_token()
            set_cookie(req, resp, SIGN_IN_COOKIE, token, None)
        render(resp, "admin_sign_in.html", status, sign_in_csrf=token, problem=problem)


class SignOut(OperatorPage):
    @signed_in
    def on_post(self, req, resp, visit: Visit) -> None:
        clear_cookie(req, resp, SESSION_COOKIE)
        see_other(resp, SIGN_IN_PAGE)


DATASET_FIELDS = ("state", "name", "date_received", "url", "destination", "report_email_1",
                  "report_email_2")
OPTIONAL_FIELDS = ("destination", "report_email_1", "report_email_2")


class Datasets(OperatorPage):
    """`/admin/datasets/`: the datasets, each with its Start import button,
    and the form that adds one."""

    @signed_in
    def on_get(self, req, resp, visit: Visit) -> None:
        added = req.get_param_as_int("added")
        self._show(resp, visit, added=added)

    @signed_in
    def on_post(self, req, resp, visit: Visit) -> None:
        entered = {name: text_field(visit.form, name) for name in DATASET_FIELDS}
        body = {name: value for name, value in entered.items()
                if value or name not in OPTIONAL_FIELDS}
        try:
            record = visit.call("add_dataset", body)
        except InvalidInput as error:
            return self._show(resp, visit, falcon.HTTP_400, entered=entered,
                              problems=error.problems)
        except Conflict as error:
            return self._show(resp, visit, falcon.HTTP_409, entered=entered,
                              problem=error.message)
        see_other(resp, f"{DATASETS_PAGE}?added={record['id']}")

    def _show(self, resp, visit: Visit, status: str = falcon.HTTP_200, entered=None,
              problems=None, problem=None, added=None) -> None:
        datasets = visit.call("list_datasets")
        problems = problems or {}
        others = {name: text for name, text in problems.items() if name not in DATASET_FIELDS}
        visit.show(resp, "admin_datasets.html", status, section="datasets",
                   datasets=datasets, states=list(STATES.values()),
                   entered=entered or {}, problems=problems, other_problems=others,
                   problem=problem,
                   added=next((d for d in datasets if d["id"] == added), None))


class StartImport(OperatorPage):
    @signed_in
    def on_post(self, req, resp, visit: Visit, dataset_id: int) -> None:
        record = visit.call("request_import", dataset_id)
        see_other(resp, f"/admin/imports/{record['id']}/")


class Imports(OperatorPage):
    @signed_in
    def on_get(self, req, resp, visit: Visit) -> None:
        visit.show(resp, "admin_imports.html", section="imports",
                   imports=visit.call("list_imports", {}))


class Import(OperatorPage):
    """`/admin/imports/{id}/`: the import at load time; site.js follows it
    through progress.json until it is refreshed or failed."""

    @signed_in
    def on_get(self, req, resp, visit: Visit, import_id: int) -> None:
        visit.show(resp, "admin_import.html", section="imports",
                   record=visit.call("get_import", import_id))


class ImportProgress(OperatorPage):
    """`/admin/imports/{id}/progress.json`: the import record, as JSON."""

    def on_get(self, req, resp, import_id: int) -> None:
        no_store(resp)
        digest = self.signer.session_digest(req.cookies.get(SESSION_COOKIE))
        if digest is None:
            return self._error(resp, 401, "sign in at /admin/ first")
        try:
            resp.media = self.admin.call("get_import", digest, import_id)
        except Unavailable as error:
            self._error(resp, 503, error.description)
        except OperatorError as error:
            self._error(resp, error.status, error.message)

    @staticmethod
    def _error(resp, status: int, description: str) -> None:
        resp.status = falcon.code_to_http_status(status)
        resp.media = {"title": HTTPStatus(status).phrase, "description": description}


# The two tables uploaded on /admin/agencies/: admin's method and what its
# answer counts.
TABLES = {"mapping": ("put_agency_mapping", "rows"),
          "stop_reasons": ("put_stop_reasons", "stems")}


class Agencies(OperatorPage):
    """`/admin/agencies/`: upload a state's agency mapping (code,name,geoid)
    or Maryland's stop-reason table (stem,purpose), as a file or pasted."""

    @signed_in
    def on_get(self, req, resp, visit: Visit) -> None:
        self._show(resp, visit)

    @signed_in
    def on_post(self, req, resp, visit: Visit) -> None:
        table = text_field(visit.form, "table")
        if table not in TABLES:
            return self._show(resp, visit, falcon.HTTP_400,
                              problems={"mapping": "choose what to upload"})
        state = text_field(visit.form, "state")
        pasted = visit.form.get("csv") if isinstance(visit.form.get("csv"), str) else ""
        entered = {"table": table, "state": state, "csv": pasted}
        content = uploaded_text(visit.form.get("file"), pasted)
        if content is None:
            return self._show(resp, visit, falcon.HTTP_400, entered,
                              {table: "choose a UTF-8 CSV file or paste the CSV"})
        method, counted = TABLES[table]
        try:
            result = visit.call(method, state, content)
        except InvalidInput as error:
            return self._show(resp, visit, falcon.HTTP_400, entered,
                              {table: "; ".join(error.problems.values())})
        except Forbidden:
            raise
        except OperatorError as error:  # no such state, or no stop reasons in it
            return self._show(resp, visit, falcon.code_to_http_status(error.status), entered,
                              {table: error.message})
        name = STATES[state].name if state in STATES else state
        what = "agency mapping" if table == "mapping" else "stop-reason table"
        self._show(resp, visit, done=f"The {what} of {name} was replaced: "
                                     f"{result[counted]:,} {counted}.")

    def _show(self, resp, visit: Visit, status: str = falcon.HTTP_200, entered=None,
              problems=None, done=None) -> None:
        visit.show(resp, "admin_agencies.html", status, section="agencies",
                   states=list(STATES.values()),
                   reason_states=[state for state in STATES.values()
                                  if state.has_stop_reasons],
                   entered=entered or {}, problems=problems or {}, done=done)


def uploaded_text(file: bytes | None, pasted: str) -> str | None:
    """The CSV of an upload: the file when one was chosen, else the pasted
    text; None when neither holds anything or the file is not UTF-8."""
    if isinstance(file, bytes) and file.strip():
        try:
            return file.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return pasted if pasted.strip() else None


class Census(OperatorPage):
    """`/admin/census/`: ask for a census refresh."""

    @signed_in
    def on_get(self, req, resp, visit: Visit) -> None:
        visit.show(resp, "admin_census.html", section="census", record=None, problems={},
                   year="")

    @signed_in
    def on_post(self, req, resp, visit: Visit) -> None:
        year = text_field(visit.form, "year")
        try:
            record = visit.call("request_census_refresh", {"year": year} if year else {})
        except InvalidInput as error:
            return visit.show(resp, "admin_census.html", falcon.HTTP_400, section="census",
                              record=None, problems=error.problems, year=year)
        see_other(resp, f"/admin/census/{record['request_id']}/")


class CensusRefresh(OperatorPage):
    """`/admin/census/{request_id}/`: one refresh, as it stands."""

    @signed_in
    def on_get(self, req, resp, visit: Visit, request_id: str) -> None:
        visit.show(resp, "admin_census.html", section="census", problems={}, year="",
                   record=visit.call("get_census_refresh", request_id))
