"""Hostile input to the operator routes: the token is checked before a body
is read, and wrong tokens from one address are limited (429 with
Retry-After, answered unread and unchecked), on the operator API and the
operator pages alike.

The gateway runs in process against the admin service driven in process
(interface tier). A request body is a `WatchedBody`, which notes every
read, so "unread" is observed, not assumed. The guard's clock is the test's
(`clock`), moved by hand: the window passes without sleeping and no answer
depends on how fast the machine is. The last test sends a request's head
alone to gunicorn over a real socket and gets its 403 with the body never
sent (e2e).
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
from urllib.parse import urlencode, urlsplit

import pytest

from services.gateway import operator_guard
from services.gateway.backends import Deps, cache_client, reader_engine
from services.gateway.operator_guard import FailedTokens
from services.gateway.resources.operator import MAX_CSV_BYTES, MAX_JSON_BYTES
from services.gateway.routes import operator_routes
from services.gateway.web.operator_pages import Signer
from services.gateway.web.routes import operator_page_routes
from shared.config import ENVIRONMENT_NAMES, Config
from shared.operator import token_digest
from tests.conftest import OPERATOR_TOKEN
from tests.support.admin import InProcessAdmin
from tests.support.gateway import gateway_client

LIMIT = 3
WINDOW = 30
SECRET = "web-secret-for-the-hostile-input-tests"
GUESS = "a-guessed-token-7f3a"
CLIENT = "198.51.100.7"
OTHER_CLIENT = "198.51.100.8"
FORBIDDEN = {"title": "Forbidden", "description": "the operator token is not valid"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class WatchedBody:
    """A request body (wsgi.input) that notes each read of it."""

    def __init__(self, data: bytes = b""):
        self.data = io.BytesIO(data)
        self.reads: list[str] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(f"read({size})")
        return self.data.read(size)

    def readline(self, size: int = -1) -> bytes:
        self.reads.append(f"readline({size})")
        return self.data.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        self.reads.append(f"readlines({hint})")
        return self.data.readlines(hint)

    def __iter__(self):
        self.reads.append("iter")
        return iter(self.data)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingAdmin:
    """The admin service in process, noting each method the gateway calls."""

    def __init__(self, admin):
        self.admin = admin
        self.calls: list[str] = []

    def call(self, method: str, *args):
        self.calls.append(method)
        return self.admin.call(method, *args)

    def close(self) -> None:
        self.admin.close()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(operator_guard, "monotonic", clock)
    return clock


@pytest.fixture
def gateway(admin_config, engine, clock):
    """A TestClient of a gateway allowing LIMIT wrong tokens in WINDOW
    seconds; `gateway.admin.calls` lists what admin was asked."""
    config = admin_config.with_changes(web_secret=SECRET, operator_max_failed_tokens=LIMIT,
                                       operator_failed_token_window=WINDOW)
    admin = CountingAdmin(InProcessAdmin(config, engine))
    deps = Deps(engine=reader_engine(config), cache=cache_client(config), admin=admin)
    try:
        with gateway_client(config, deps) as client:
            client.admin = admin
            yield client
    finally:
        deps.close()


def send(client, method: str, path: str, body: WatchedBody | None = None,
         length: int | None = None, token: str | None = OPERATOR_TOKEN,
         content_type: str = "application/json", client_addr: str = CLIENT, **kwargs):
    """A request with `body` as its stream, declaring `length` bytes (by
    default the body's own)."""
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    extras = {}
    if body is not None:
        declared = len(body.data.getvalue()) if length is None else length
        headers |= {"Content-Type": content_type, "Content-Length": str(declared)}
        extras["wsgi.input"] = body
    return client.simulate_request(method, path, headers=headers, extras=extras,
                                   remote_addr=client_addr, **kwargs)


def fail(client, times: int = 1, client_addr: str = CLIENT) -> None:
    for _ in range(times):
        answer = send(client, "GET", "/admin/api/datasets/", token=GUESS,
                      client_addr=client_addr)
        assert answer.status_code == 403, answer.text


# Each route that reads a body, with a small body admin refuses once read (a
# 400, so that nothing is changed), and its limit.
BODY_ROUTES = [
    ("POST", "/admin/api/datasets/", "application/json", b'{"state": "nc"}', MAX_JSON_BYTES),
    ("PUT", "/admin/api/agencies/il/mapping/", "text/csv", b"code,name\nA,B\n", MAX_CSV_BYTES),
    ("PUT", "/admin/api/stop-reasons/md/", "text/csv", b"stem\n21-801\n", MAX_CSV_BYTES),
    ("POST", "/admin/api/census/refresh/", "application/json", b'{"year": "soon"}',
     MAX_JSON_BYTES),
]


@pytest.mark.parametrize("method, path, kind, small, limit", BODY_ROUTES,
                         ids=[path for _, path, *_ in BODY_ROUTES])
def test_a_wrong_or_missing_token_is_refused_before_the_body_is_read(gateway, method, path,
                                                                       kind, small, limit):
    huge = WatchedBody(b"x" * 1024)
    wrong = send(gateway, method, path, huge, length=50 * 2**20, token=GUESS,
                 content_type=kind)
    assert wrong.status_code == 403 and wrong.json == FORBIDDEN
    assert huge.reads == []

    # Under the limit and not even valid: still the token's 403, not a 400.
    malformed = WatchedBody(small)
    wrong = send(gateway, method, path, malformed, token=GUESS, content_type=kind)
    assert wrong.status_code == 403 and wrong.json == FORBIDDEN
    assert malformed.reads == []

    missing_body = WatchedBody(small)
    missing = send(gateway, method, path, missing_body, token=None, content_type=kind)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing_body.reads == []

    # With the operator's token: above the limit a 413, still unread ...
    too_large = WatchedBody(b"x" * 1024)
    refused = send(gateway, method, path, too_large, length=limit + 1, content_type=kind)
    assert refused.status_code == 413
    assert set(refused.json) == {"title", "description"}
    assert too_large.reads == []

    # ... and a body within it is read, and answered.
    read = WatchedBody(small)
    answered = send(gateway, method, path, read, content_type=kind)
    assert answered.status_code == 400, answered.text
    assert read.reads and read.data.tell() == len(small)


def test_after_the_limit_a_client_gets_429_unchecked_and_unread(gateway, clock):
    fail(gateway, LIMIT)
    asked = len(gateway.admin.calls)

    body = WatchedBody(b'{"state": "nc"}')
    refused = send(gateway, "POST", "/admin/api/datasets/", body)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(WINDOW)
    assert refused.json == {"title": "Too Many Requests",
                            "description": "too many wrong operator tokens from this "
                                           f"address; try again in {WINDOW} s"}
    assert body.reads == []
    assert send(gateway, "GET", "/admin/api/imports/").status_code == 429
    # No token at all: the 429 too, not a 401.
    assert send(gateway, "GET", "/admin/api/imports/", token=None).status_code == 429
    assert len(gateway.admin.calls) == asked

    # Every operator route, API and pages, whatever the method.
    values = {"dataset_id": "1", "import_id": "1", "state": "nc", "request_id": "abc"}
    templates = [route.template for route in (*operator_routes(None),
                                               *operator_page_routes(None, None))]
    assert len(templates) > 15
    for template in templates:
        path = re.sub(r"\{(\w+)[^}]*\}", lambda field: values[field[1]], template)
        answer = send(gateway, "GET", path, token=None)
        assert answer.status_code == 429, path
        assert answer.headers["Retry-After"] == str(WINDOW), path
    sign_in_page = send(gateway, "GET", "/admin/", token=None)
    assert "Too Many Requests" in sign_in_page.text
    assert sign_in_page.headers["Content-Type"].startswith("text/html")
    assert len(gateway.admin.calls) == asked

    # Another address, and the public routes, are not concerned.
    assert send(gateway, "GET", "/admin/api/datasets/", client_addr=OTHER_CLIENT
                ).status_code == 200
    assert send(gateway, "GET", "/openapi.json").status_code == 200

    clock.advance(10.5)
    assert send(gateway, "GET", "/admin/api/imports/").headers["Retry-After"] == \
        str(WINDOW - 10)


def test_the_block_ends_when_the_oldest_wrong_token_leaves_the_window(gateway, clock):
    for _ in range(LIMIT):
        fail(gateway)
        clock.advance(5)
    # The oldest wrong token is WINDOW - 15 s from leaving the window.
    assert send(gateway, "GET", "/admin/api/datasets/").headers["Retry-After"] == \
        str(WINDOW - 15)
    clock.advance(WINDOW - 15 - 0.5)
    last_moment = send(gateway, "GET", "/admin/api/datasets/")
    assert last_moment.status_code == 429 and last_moment.headers["Retry-After"] == "1"

    clock.advance(0.5)
    assert send(gateway, "GET", "/admin/api/datasets/").status_code == 200
    body = WatchedBody(json.dumps({"year": 2022}).encode())
    accepted = send(gateway, "POST", "/admin/api/census/refresh/", body)
    assert accepted.status_code == 202, accepted.text
    assert body.reads

    # The two later wrong tokens are still within the window: one more is
    # the limit again.
    fail(gateway)
    assert send(gateway, "GET", "/admin/api/datasets/").status_code == 429


def test_successful_calls_neither_count_nor_forgive(gateway):
    fail(gateway, LIMIT - 1)
    for _ in range(3 * LIMIT):
        assert send(gateway, "GET", "/admin/api/datasets/").status_code == 200
    assert send(gateway, "GET", "/admin/api/imports/").status_code == 200

    fail(gateway)
    assert send(gateway, "GET", "/admin/api/datasets/").status_code == 429


def test_wrong_tokens_and_refusals_are_logged_with_the_address_not_the_token(gateway,
                                                                            caplog):
    with caplog.at_level(logging.WARNING, logger="services.gateway.operator_guard"):
        fail(gateway, LIMIT)
        send(gateway, "GET", "/admin/api/datasets/")
        send(gateway, "GET", "/admin/api/imports/", token=GUESS)
    records = [record for record in caplog.records
               if record.name == "services.gateway.operator_guard"]
    assert [record.levelno for record in records] == [logging.WARNING] * (LIMIT + 2)
    wrong, refused = records[:LIMIT], records[LIMIT:]
    assert [record.getMessage() for record in wrong] == [
        f"wrong operator token from {CLIENT} ({count} of {LIMIT} allowed within {WINDOW} s)"
        for count in range(1, LIMIT + 1)]
    for record in refused:
        assert record.getMessage().startswith(f"operator request from {CLIENT} refused: ")
        assert f"may try again in {WINDOW} s" in record.getMessage()
    every_line = caplog.text
    assert GUESS not in every_line and token_digest(GUESS) not in every_line
    assert OPERATOR_TOKEN not in every_line


def sign_in_form(client, token: str) -> tuple[bytes, dict]:
    """The sign-in form filled in with `token`, and its double-submit cookie."""
    page = send(client, "GET", "/admin/", token=None)
    assert page.status_code == 200, page.text
    form = urlencode({"csrf": CSRF.search(page.text)[1], "token": token}).encode()
    return form, {"odp_csrf": page.cookies["odp_csrf"].value}


def test_wrong_tokens_on_the_sign_in_form_count_like_the_apis(gateway):
    kind = "application/x-www-form-urlencoded"
    for _ in range(LIMIT):
        form, cookies = sign_in_form(gateway, GUESS)
        answer = send(gateway, "POST", "/admin/", WatchedBody(form), token=None,
                      content_type=kind, cookies=cookies)
        assert answer.status_code == 403
        assert "That operator token is not valid." in answer.text

    blocked = send(gateway, "GET", "/admin/", token=None)
    assert blocked.status_code == 429
    body = WatchedBody(urlencode({"csrf": "x", "token": OPERATOR_TOKEN}).encode())
    asked = len(gateway.admin.calls)
    signing_in = send(gateway, "POST", "/admin/", body, token=None, content_type=kind)
    assert signing_in.status_code == 429 and "odp_session" not in signing_in.cookies
    assert body.reads == [] and len(gateway.admin.calls) == asked
    # One counter for both: the API refuses the address too.
    assert send(gateway, "GET", "/admin/api/datasets/").status_code == 429


def test_a_signed_in_form_is_read_only_once_admin_accepts_the_sessions_token(gateway):
    kind = "application/x-www-form-urlencoded"
    signer = Signer(SECRET.encode())
    withdrawn = signer.session_value(token_digest("a token since withdrawn"))
    for _ in range(LIMIT + 1):
        body = WatchedBody(b"csrf=x&name=y")
        answer = send(gateway, "POST", "/admin/datasets/", body, length=2**20, token=None,
                      content_type=kind, cookies={"odp_session": withdrawn})
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith("/admin/")
        assert answer.cookies["odp_session"].value == ""
        assert body.reads == []
    # A signed session is no guess: its refusals do not count.
    assert send(gateway, "GET", "/admin/api/datasets/").status_code == 200

    session = signer.session_value(token_digest(OPERATOR_TOKEN))
    body = WatchedBody(b"csrf=not-the-form-token&name=y")
    answer = send(gateway, "POST", "/admin/datasets/", body, token=None, content_type=kind,
                  cookies={"odp_session": session})
    assert answer.status_code == 403 and "Form refused" in answer.text
    assert body.reads


def test_the_counter_forgets_clients_out_of_the_window_and_keeps_a_bounded_number(clock):
    failed = FailedTokens(limit=2, window=10, max_clients=3)
    for client in ("a", "b", "c", "d"):
        assert failed.failed(client) == 1
        clock.advance(1)
    # Past the cap, the client whose last wrong token is oldest is forgotten.
    assert list(failed.clients) == ["b", "c", "d"]

    assert failed.failed("b") == 2
    assert failed.retry_after("b") == 10 - 3
    assert failed.retry_after("c") is None
    assert list(failed.clients) == ["c", "d", "b"]

    clock.advance(9.5)
    # The last wrong tokens of c and d have left the window: they count for
    # nothing, and are gone with the next count.
    assert failed.failed("e") == 1
    assert list(failed.clients) == ["b", "e"]
    assert failed.retry_after("b") is None
    # At most `limit` moments are kept per client.
    for _ in range(5):
        failed.failed("e")
    assert len(failed.clients["e"]) == 2

    for limit, window in ((0, 10), (1, 0)):
        with pytest.raises(ValueError):
            FailedTokens(limit, window)


def test_the_limit_and_the_window_are_settings():
    default = Config.from_env(environ={}, env_file=None)
    assert (default.operator_max_failed_tokens, default.operator_failed_token_window) == (
        10, 60.0)
    config = Config.from_env(environ={"OPERATOR_MAX_FAILED_TOKENS": "4",
                                      "OPERATOR_FAILED_TOKEN_WINDOW": "2.5"}, env_file=None)
    assert (config.operator_max_failed_tokens, config.operator_failed_token_window) == (4, 2.5)
    assert ENVIRONMENT_NAMES["operator_max_failed_tokens"] == "OPERATOR_MAX_FAILED_TOKENS"
    assert ENVIRONMENT_NAMES["operator_failed_token_window"] == "OPERATOR_FAILED_TOKEN_WINDOW"
    assert FailedTokens.from_config(config).limit == 4


@pytest.mark.parametrize("path, kind, length", [
    ("/admin/api/datasets/", "application/json", MAX_JSON_BYTES),
    ("/admin/api/agencies/nc/mapping/", "text/csv", MAX_CSV_BYTES),
])
def test_gunicorn_answers_a_wrong_token_before_the_body_is_sent(start_admin, start_gateway,
                                                                 path, kind, length):
    """The head alone, declaring a body within the limit that never comes: a
    gateway waiting for it would leave this request unanswered."""
    start_admin()
    base = urlsplit(start_gateway())
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=20)
    try:
        connection.putrequest("POST" if path.endswith("datasets/") else "PUT", path)
        for name, value in (("Authorization", f"Bearer {GUESS}"), ("Content-Type", kind),
                            ("Content-Length", str(length))):
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 403
        assert json.loads(answer.read()) == FORBIDDEN
    finally:
        connection.close()


def test_behind_a_trusted_proxy_clients_are_told_apart_by_what_it_forwarded(
        admin_config, engine, clock):
    """Behind the ingress every request comes from its address: with it named
    in TRUSTED_PROXIES, the client is the nearest forwarded address that is
    not a trusted proxy, and what a client writes further left changes
    nothing. Without it, the proxy's address is the client."""
    proxy, guesser, operator = "10.1.2.3", "203.0.113.7", "198.51.100.9"

    def gateway_with(trusted):
        config = admin_config.with_changes(operator_max_failed_tokens=LIMIT,
                                           operator_failed_token_window=WINDOW,
                                           trusted_proxies=trusted)
        deps = Deps(engine=reader_engine(config), cache=cache_client(config),
                    admin=InProcessAdmin(config, engine))
        return deps, gateway_client(config, deps)

    def call(client, forwarded, token):
        return send(client, "GET", "/admin/api/datasets/", token=token, client_addr=proxy,
                    headers={"X-Forwarded-For": forwarded})

    deps, context = gateway_with(("10.0.0.0/8",))
    try:
        with context as client:
            for spoof in range(LIMIT):
                # A new made-up address each time, left of what the proxy appended.
                answer = call(client, f"192.0.2.{spoof}, {guesser}", GUESS)
                assert answer.status_code == 403
            assert call(client, f"192.0.2.99, {guesser}", GUESS).status_code == 429
            assert call(client, operator, OPERATOR_TOKEN).status_code == 200
    finally:
        deps.close()

    deps, context = gateway_with(())
    try:
        with context as client:
            for _ in range(LIMIT):
                assert call(client, guesser, GUESS).status_code == 403
            assert call(client, operator, OPERATOR_TOKEN).status_code == 429
    finally:
        deps.close()
