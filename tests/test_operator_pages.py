"""The operator pages under /admin/: sign-in with the operator token, the
signed session cookie, the forms' csrf tokens and Origin check, datasets,
imports, uploads and the census refresh, answered by the admin service
driven in process (interface tier, falcon's TestClient with a cookie jar);
then an operator in a real browser against gunicorn and the admin, ingest
and stats processes imports a release and sees its numbers, and a forged
cross-site form is refused (e2e)."""

from __future__ import annotations

import functools
import html
import logging
import re
import threading
import time
import urllib.request
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest

from services.gateway.admin_rpc import AdminClient
from services.gateway.backends import Deps, cache_client, reader_engine
from services.gateway.web.operator_pages import SESSION_SECONDS, Signer
from shared import md_stop_reasons
from shared.config import Config
from shared.operator import token_digest
from tests.conftest import OPERATOR_TOKEN, leave_nothing_behind
from tests.support.gateway import ALDER, gateway_client
from tests.support.releases import small_release

SECRET = "web-secret-for-the-operator-page-tests"
# falcon's TestClient sends Host: falconframework.org.
OUR_ORIGIN = "http://falconframework.org"
PAGES = ("/admin/datasets/", "/admin/imports/", "/admin/agencies/", "/admin/census/")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """The TestClient used as a browser uses the site: the cookies it is
    given are sent back, forms are posted with their page's csrf field."""

    def __init__(self, client, protocol: str = "http"):
        self.client = client
        self.protocol = protocol
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs):
        result = self.client.simulate_request(method, path, cookies=dict(self.cookies),
                                              protocol=self.protocol, **kwargs)
        for name, cookie in result.cookies.items():
            if cookie.value:
                self.cookies[name] = cookie.value
            else:  # cleared (expired in 1970)
                self.cookies.pop(name, None)
        return result

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, form: dict, files: dict | None = None, headers=None):
        if files is None:
            body, kind = urlencode(form), "application/x-www-form-urlencoded"
        else:
            body, kind = multipart(form, files)
        return self.request("POST", path, body=body,
                            headers={"Content-Type": kind, **(headers or {})})

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        return CSRF.search(page.text).group(1)

    def submit(self, path: str, form: dict, page: str | None = None, **kwargs):
        """Post `form` with the csrf field of the page it is on (`path`, or `page`)."""
        return self.post(path, {"csrf": self.csrf(page or path), **form}, **kwargs)


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields.items()]
    for name, (filename, content) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
                     + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def field_problem(page_html: str, name: str) -> str | None:
    found = re.search(rf'<span class="field-problem" id="{name}-problem">([^<]*)</span>',
                      page_html)
    return html.unescape(found.group(1)) if found else None


def entered_value(page_html: str, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}"[^>]*value="([^"]*)"', page_html)
    return html.unescape(found.group(1))


def sign_in(client, token: str = OPERATOR_TOKEN, protocol: str = "http"):
    browser = Browser(client, protocol)
    return browser, browser.submit("/admin/", {"token": token})


@pytest.fixture
def pages(admin_config, engine):
    """A TestClient of the gateway with the web secret set and the admin
    service in process."""
    from tests.support.admin import InProcessAdmin

    config = admin_config.with_changes(web_secret=SECRET)
    deps = Deps(engine=reader_engine(config), cache=cache_client(config),
                admin=InProcessAdmin(config, engine))
    try:
        with gateway_client(config, deps) as client:
            yield client
    finally:
        deps.close()


@pytest.fixture
def operator_browser(pages) -> Browser:
    browser, answer = sign_in(pages)
    assert answer.status_code == 303, answer.text
    return browser


def dataset_form(**changes) -> dict:
    tag = uuid.uuid4().hex[:8]
    form = {"state": "nc", "name": f"NC page release {tag}", "date_received": "2026-11-20",
            "url": f"https://data.example.org/nc/{tag}.zip", "destination": "",
            "report_email_1": "ops@example.org", "report_email_2": ""}
    return form | changes


def datasets_named(db, name: str) -> int:
    return db("SELECT count(*) FROM admin.datasets WHERE name = :name", name=name)[0][0]


# --- signing in ---------------------------------------------------------------

def test_without_a_web_secret_each_process_signs_with_its_own_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        first, second = Signer.from_config(Config()), Signer.from_config(Config())
    assert "ODP_WEB_SECRET is not set" in caplog.text
    digest = token_digest("a token")
    assert first.session_digest(first.session_value(digest)) == digest
    assert second.session_digest(first.session_value(digest)) is None
    shared = "a-shared-secret-of-some-length"
    assert Signer.from_config(Config(web_secret=shared)).session_digest(
        Signer(shared.encode()).session_value(digest)) == digest
    # The example's placeholder, or a short secret, is not used.
    for weak in ("CHANGE-ME-web-secret", "short"):
        assert Signer.from_config(Config(web_secret=weak)).session_digest(
            Signer(weak.encode()).session_value(digest)) is None


def test_sign_in_sets_a_signed_session_cookie_that_holds_no_token(pages):
    browser = Browser(pages)
    form = browser.get("/admin/")
    assert form.status_code == 200
    assert form.headers["Cache-Control"] == "no-store"
    assert "X-Cache" not in form.headers
    assert 'type="password"' in form.text
    double_submit = form.cookies["odp_csrf"]
    assert double_submit.http_only and double_submit.same_site == "Strict"
    assert double_submit.path == "/admin"

    answer = browser.post("/admin/", {"csrf": CSRF.search(form.text).group(1),
                                      "token": OPERATOR_TOKEN})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/admin/datasets/")
    cookie = answer.cookies["odp_session"]
    assert cookie.http_only and cookie.same_site == "Strict"
    assert cookie.path == "/admin" and not cookie.secure
    assert cookie.max_age == SESSION_SECONDS
    assert OPERATOR_TOKEN not in cookie.value
    assert OPERATOR_TOKEN not in answer.headers["Location"]
    digest, expires, signature = cookie.value.split(".")
    assert digest == token_digest(OPERATOR_TOKEN)
    assert 0 < int(expires) - time.time() <= SESSION_SECONDS
    assert len(signature) == 64

    datasets = browser.get("/admin/datasets/")
    assert datasets.status_code == 200
    assert datasets.headers["Cache-Control"] == "no-store"
    assert "<h1>Datasets</h1>" in datasets.text
    # Signed in, the sign-in page sends the operator on.
    assert browser.get("/admin/").headers["Location"].endswith("/admin/datasets/")


def test_over_https_the_session_cookie_is_secure(pages):
    browser, answer = sign_in(pages, protocol="https")
    assert answer.status_code == 303
    assert answer.cookies["odp_session"].secure


def test_a_wrong_token_is_refused_and_sets_no_session(pages):
    browser, answer = sign_in(pages, token=OPERATOR_TOKEN + "-wrong")
    assert answer.status_code == 403
    assert "That operator token is not valid." in answer.text
    assert "odp_session" not in answer.cookies and "odp_session" not in browser.cookies
    assert OPERATOR_TOKEN not in answer.text
    assert browser.get("/admin/datasets/").status_code == 303

    _, empty = sign_in(pages, token="  ")
    assert empty.status_code == 400 and "Enter your operator token." in empty.text


def test_pages_without_a_session_send_the_browser_to_sign_in(pages):
    for path in (*PAGES, "/admin/imports/1/", "/admin/census/abc/"):
        answer = pages.simulate_get(path)
        assert answer.status_code == 303, path
        assert answer.headers["Location"].endswith("/admin/"), path
        assert answer.headers["Cache-Control"] == "no-store"
    progress = pages.simulate_get("/admin/imports/1/progress.json")
    assert progress.status_code == 401
    assert progress.json["description"] == "sign in at /admin/ first"


def test_an_altered_expired_or_foreign_cookie_is_refused(pages):
    signer = Signer(SECRET.encode())
    digest = token_digest(OPERATOR_TOKEN)
    good = signer.session_value(digest)
    assert pages.simulate_get("/admin/datasets/",
                              cookies={"odp_session": good}).status_code == 200

    _, expires, signature = good.split(".")
    later = f"{digest}.{int(expires) + 3600}.{signature}"
    other_digest = f"{token_digest('someone else')}.{expires}.{signature}"
    expired = signer.session_value(digest, now=time.time() - SESSION_SECONDS - 1)
    other_secret = Signer(b"another secret").session_value(digest)
    for value in (later, other_digest, expired, other_secret, digest, f"{digest}.{expires}",
                  "x" * 200,
                  good[:-1] + ("0" if good[-1] != "0" else "1"), "é.1.x"):
        answer = pages.simulate_get("/admin/datasets/", cookies={"odp_session": value})
        assert answer.status_code == 303, value
        assert answer.headers["Location"].endswith("/admin/")
        assert answer.cookies["odp_session"].value == ""  # cleared
        assert pages.simulate_get("/admin/imports/1/progress.json",
                                  cookies={"odp_session": value}).status_code == 401


# --- datasets and imports -----------------------------------------------------

def test_a_bad_dataset_shows_each_problem_beside_its_field_and_keeps_the_values(
        operator_browser, db):
    form = dataset_form(report_email_1="not-an-address", date_received="2026-02-30")
    answer = operator_browser.submit("/admin/datasets/", form)
    assert answer.status_code == 400
    assert field_problem(answer.text, "report_email_1") == "Not a valid email address."
    assert field_problem(answer.text, "date_received") == "Not a valid date."
    assert field_problem(answer.text, "name") is None
    for name in ("name", "url", "report_email_1", "date_received"):
        assert entered_value(answer.text, name) == form[name]
    assert '<option value="nc" selected>' in answer.text
    assert datasets_named(db, form["name"]) == 0


def test_a_good_dataset_is_listed_and_a_used_name_is_a_409(operator_browser, db):
    form = dataset_form(destination="nc/pages", report_email_2="counsel@example.org")
    answer = operator_browser.submit("/admin/datasets/", form)
    assert answer.status_code == 303, answer.text
    assert re.search(r"/admin/datasets/\?added=\d+$", answer.headers["Location"])
    listed = operator_browser.get(answer.headers["Location"].split("falconframework.org")[-1])
    assert f"Dataset “{form['name']}” added." in listed.text
    assert f'<th scope="row">{form["name"]}</th>' in listed.text
    assert "ops@example.org, counsel@example.org" in listed.text
    assert datasets_named(db, form["name"]) == 1

    again = operator_browser.submit("/admin/datasets/", form | {"url": form["url"] + "2"})
    assert again.status_code == 409
    assert "name: another dataset already has name" in html.unescape(again.text)
    assert entered_value(again.text, "url") == form["url"] + "2"


def test_start_import_opens_the_import_page_and_its_progress(operator_browser, db, engine,
                                                              extra_state):
    """A dataset of Nowhere (a state no service imports): its import is queued
    and stays so; the page shows it at load time, progress.json as JSON."""
    form = dataset_form(state=extra_state.code)
    assert operator_browser.submit("/admin/datasets/", form).status_code == 303
    (dataset_id,) = db("SELECT id FROM admin.datasets WHERE name = :name", name=form["name"])[0]
    try:
        started = operator_browser.submit(f"/admin/datasets/{dataset_id}/import/", {},
                                          page="/admin/datasets/")
        assert started.status_code == 303, started.text
        import_id = int(re.search(r"/admin/imports/(\d+)/$", started.headers["Location"])[1])
        page = operator_browser.get(f"/admin/imports/{import_id}/")
        assert page.status_code == 200
        assert f'data-progress="/admin/imports/{import_id}/progress.json"' in page.text
        assert '<dd data-field="status">queued</dd>' in page.text
        assert "<progress" in page.text
        progress = operator_browser.get(f"/admin/imports/{import_id}/progress.json")
        assert progress.status_code == 200
        assert progress.headers["Cache-Control"] == "no-store"
        assert progress.json["id"] == import_id and progress.json["status"] == "queued"
        listed = operator_browser.get("/admin/imports/")
        assert f'<a href="/admin/imports/{import_id}/">' in listed.text

        missing = operator_browser.submit("/admin/datasets/424242/import/", {},
                                          page="/admin/datasets/")
        assert missing.status_code == 404 and "there is no dataset 424242" in missing.text
        assert operator_browser.get("/admin/imports/424242/").status_code == 404
        assert operator_browser.get("/admin/imports/424242/progress.json").status_code == 404
    finally:
        leave_nothing_behind(engine)


# --- forms from elsewhere -----------------------------------------------------

def test_posts_without_the_csrf_token_or_from_another_origin_change_nothing(
        operator_browser, db):
    csrf = operator_browser.csrf("/admin/datasets/")
    other_session = Signer(SECRET.encode()).session_value(token_digest(OPERATOR_TOKEN),
                                                          now=time.time() - 60)
    foreign_csrf = Signer(SECRET.encode()).form_token(other_session)
    refused = [
        ({}, {}),
        ({"csrf": ""}, {}),
        ({"csrf": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")}, {}),
        ({"csrf": foreign_csrf}, {}),
        ({"csrf": "é"}, {}),
        ({"csrf": csrf}, {"Origin": "https://evil.example"}),
        ({"csrf": csrf}, {"Origin": "http://falconframework.org.evil.example"}),
        ({"csrf": csrf}, {"Origin": "null"}),
    ]
    for extra, headers in refused:
        form = dataset_form()
        answer = operator_browser.post("/admin/datasets/", form | extra, headers=headers)
        assert answer.status_code == 403, (extra, headers)
        assert "Form refused" in answer.text and "Nothing was changed" in answer.text
        assert datasets_named(db, form["name"]) == 0

    # The same form with the page's token and our own origin is taken.
    form = dataset_form()
    assert operator_browser.post("/admin/datasets/", form | {"csrf": csrf},
                                 headers={"Origin": OUR_ORIGIN}).status_code == 303
    assert datasets_named(db, form["name"]) == 1
    (dataset_id,) = db("SELECT id FROM admin.datasets WHERE name = :name", name=form["name"])[0]

    # Starting an import, uploading, asking for a census refresh, signing out.
    imports_before = db("SELECT count(*) FROM admin.imports")[0][0]
    census_before = db("SELECT count(*) FROM admin.census_refreshes")[0][0]
    for path in (f"/admin/datasets/{dataset_id}/import/", "/admin/census/",
                 "/admin/sign-out/"):
        assert operator_browser.post(path, {}).status_code == 403, path
        assert operator_browser.post(path, {"csrf": csrf},
                                     headers={"Origin": "https://evil.example"}
                                     ).status_code == 403, path
    mapping = operator_browser.post("/admin/agencies/",
                                    {"table": "mapping", "state": "il",
                                     "csv": "code,name,geoid\nX,Y,\n"}, files={})
    assert mapping.status_code == 403
    assert db("SELECT count(*) FROM admin.imports")[0][0] == imports_before
    assert db("SELECT count(*) FROM admin.census_refreshes")[0][0] == census_before
    assert "odp_session" in operator_browser.cookies
    assert operator_browser.get("/admin/datasets/").status_code == 200

    # Without a session a post goes to sign-in, and changes nothing either.
    form = dataset_form()
    anonymous = Browser(operator_browser.client).post("/admin/datasets/", form | {"csrf": csrf})
    assert anonymous.status_code == 303 and datasets_named(db, form["name"]) == 0


def test_the_sign_in_form_needs_its_double_submit_token(pages):
    form = pages.simulate_get("/admin/")
    nonce = form.cookies["odp_csrf"].value
    other = Signer(SECRET.encode()).new_sign_in_token()
    kind = {"Content-Type": "application/x-www-form-urlencoded"}
    for cookies, csrf, origin in [
        ({}, nonce, None),                       # no cookie
        ({"odp_csrf": nonce}, "", None),         # no field
        ({"odp_csrf": nonce}, other, None),      # another browser's token
        ({"odp_csrf": "forged.value"}, "forged.value", None),  # not ours
        ({"odp_csrf": nonce}, nonce, "https://evil.example"),
    ]:
        answer = pages.simulate_post(
            "/admin/", body=urlencode({"csrf": csrf, "token": OPERATOR_TOKEN}),
            cookies=cookies, headers=kind | ({"Origin": origin} if origin else {}))
        assert answer.status_code == 403, (cookies, csrf, origin)
        assert "odp_session" not in answer.cookies


# --- uploads, census, sign-out, admin down ------------------------------------

def test_an_agency_mapping_upload_names_the_bad_line_and_column(operator_browser, db):
    bad = b"code,name,geoid\nOPS A PD,Ops A Police Department,\nOPS B PD,Ops B,37063\n"
    answer = operator_browser.submit("/admin/agencies/", {"table": "mapping", "state": "il",
                                                          "csv": ""},
                                     files={"file": ("mapping.csv", bad)})
    assert answer.status_code == 400
    assert "line 3, column geoid: &#39;37063&#39; is not a census GEO_ID" in answer.text
    assert '<option value="il" selected>' in answer.text

    good = ("code,name,geoid\nOPS A PD,Ops A Police Department,\n"
            "OPS B PD,Ops B Police Department,1600000US1714000\n")
    pasted = operator_browser.submit("/admin/agencies/",
                                     {"table": "mapping", "state": "il", "csv": good},
                                     files={"file": ("", b"")})
    assert pasted.status_code == 200, pasted.text
    assert "The agency mapping of Illinois was replaced: 2 rows." in pasted.text
    assert db("SELECT count(*) FROM admin.agency_mappings WHERE state = 'il'")[0][0] == 2

    empty = operator_browser.submit("/admin/agencies/",
                                    {"table": "mapping", "state": "il", "csv": " "},
                                    files={"file": ("", b"")})
    assert empty.status_code == 400 and "paste the CSV" in empty.text


def test_the_stop_reason_table_upload(operator_browser):
    bad = "stem,purpose\n21-801,Speed Limit Violation\n21-202,Not a purpose\n"
    answer = operator_browser.submit("/admin/agencies/", {"table": "stop_reasons",
                                                          "state": "md", "csv": bad},
                                     files={"file": ("", b"")})
    assert answer.status_code == 400
    assert "line 3, column 2: purpose" in html.unescape(answer.text)
    # What the textarea held is kept.
    assert "21-202,Not a purpose" in answer.text

    table = md_stop_reasons.to_csv(md_stop_reasons.default()).encode()
    uploaded = operator_browser.submit("/admin/agencies/", {"table": "stop_reasons",
                                                            "state": "md", "csv": ""},
                                       files={"file": ("reasons.csv", table)})
    assert uploaded.status_code == 200, uploaded.text
    stems = len(md_stop_reasons.default())
    assert f"The stop-reason table of Maryland was replaced: {stems:,} stems." in uploaded.text


def test_a_census_refresh_is_requested_and_shown(operator_browser, db):
    answer = operator_browser.submit("/admin/census/", {"year": ""})
    assert answer.status_code == 303
    request_id = re.search(r"/admin/census/([0-9a-f]+)/$", answer.headers["Location"])[1]
    shown = operator_browser.get(f"/admin/census/{request_id}/")
    assert shown.status_code == 200
    assert f'<dd data-field="request_id">{request_id}</dd>' in shown.text
    assert '<dd data-field="status">requested</dd>' in shown.text
    assert db("SELECT status FROM admin.census_refreshes WHERE request_id = :id",
              id=request_id)[0][0] == "requested"

    bad = operator_browser.submit("/admin/census/", {"year": "soon"})
    assert bad.status_code == 400 and "year: Not a valid integer." in bad.text
    assert operator_browser.get("/admin/census/0000/").status_code == 404


def test_sign_out_clears_the_cookie(operator_browser):
    answer = operator_browser.submit("/admin/sign-out/", {}, page="/admin/datasets/")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/admin/")
    cleared = answer.cookies["odp_session"]
    assert cleared.value == "" and cleared.expires.year == 1970
    assert cleared.path == "/admin" and cleared.http_only
    assert "odp_session" not in operator_browser.cookies
    assert operator_browser.get("/admin/datasets/").status_code == 303


def test_with_the_admin_service_down_the_pages_say_so(admin_config, engine):
    """A real RPC client on the broker, with no admin service answering."""
    config = admin_config.with_changes(web_secret=SECRET, admin_rpc_timeout=1.0)
    deps = Deps(engine=reader_engine(config), cache=cache_client(config),
                admin=AdminClient(config))
    try:
        with gateway_client(config, deps) as client:
            _, answer = sign_in(client)
            assert answer.status_code == 503
            assert "Admin service unavailable" in answer.text
            assert "odp_session" not in answer.cookies
            session = Signer(SECRET.encode()).session_value(token_digest(OPERATOR_TOKEN))
            page = client.simulate_get("/admin/datasets/", cookies={"odp_session": session})
            assert page.status_code == 503 and "cannot reach the admin service" in page.text
            progress = client.simulate_get("/admin/imports/1/progress.json",
                                           cookies={"odp_session": session})
            assert progress.status_code == 503
    finally:
        deps.close()


# --- in a browser, against the processes ---------------------------------------

class ForgingSite:
    """Another origin (a port of its own) serving a page whose form posts
    itself to the gateway at once."""

    def __init__(self, folder, target: str, fields: dict):
        folder.mkdir()
        inputs = "".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
                         for name, value in fields.items())
        (folder / "forged.html").write_text(
            f'<!doctype html><html><body><form method="post" action="{target}">{inputs}'
            "</form><script>document.forms[0].submit()</script></body></html>")
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/forged.html"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def get_json(url: str):
    import json

    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.mark.e2e
def test_an_operator_imports_a_release_in_the_browser(start_admin, start_service,
                                                      start_gateway, browser_page, release,
                                                      db, tmp_path):
    start_admin()
    start_service("services.ingest")
    start_service("services.stats")
    base = start_gateway(ODP_WEB_SECRET=SECRET)
    tag = uuid.uuid4().hex[:8]
    newcomer = f"Operator Pages Police Department {tag}"

    def write(writer):
        small_release(writer)
        writer.stop(6, newcomer, "2016-02-02 10:00:00")
        writer.person(61, 6, "D", 40, "F", "N", "B")

    url = release(write).as_uri()

    # A wrong token: refused, no session.
    stranger = browser_page()
    stranger.goto(f"{base}/admin/")
    stranger.fill("#token", "not-the-operator-token")
    with stranger.expect_navigation():
        stranger.get_by_role("button", name="Sign in").click()
    assert "That operator token is not valid." in stranger.locator(".problem").inner_text()
    assert not [c for c in stranger.context.cookies() if c["name"] == "odp_session"]
    # The refusal itself is the one problem the browser saw (as a response
    # and as the console's note of it).
    assert f"HTTP 403: {base}/admin/" in stranger.problems
    assert all("403" in problem for problem in stranger.problems), stranger.problems

    # The operator signs in ...
    page = browser_page()
    page.goto(f"{base}/admin/")
    page.fill("#token", OPERATOR_TOKEN)
    with page.expect_navigation(url=f"{base}/admin/datasets/"):
        page.get_by_role("button", name="Sign in").click()
    (session,) = [c for c in page.context.cookies() if c["name"] == "odp_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["path"] == "/admin" and OPERATOR_TOKEN not in session["value"]
    assert page.evaluate("() => document.cookie") == ""
    assert OPERATOR_TOKEN not in page.evaluate("() => JSON.stringify(localStorage)")

    # ... adds a dataset of the release ...
    name = f"NC operator pages {tag}"
    page.select_option("#state", "nc")
    page.fill("#name", name)
    page.fill("#date_received", "2026-11-20")
    page.fill("#url", url)
    page.fill("#report_email_1", "ops@example.org")
    with page.expect_navigation(url=re.compile(r"/admin/datasets/\?added=\d+$")):
        page.get_by_role("button", name="Add the dataset").click()
    assert name in page.locator(".notice").inner_text()

    # ... starts its import and watches it to the end.
    with page.expect_navigation(url=re.compile(r"/admin/imports/\d+/$")):
        page.get_by_role("button", name=f"Start import of {name}").click()
    panel = page.locator("[data-progress]")
    page.wait_for_selector("[data-final=refreshed]", timeout=120_000)
    assert panel.locator("[data-field=status]").inner_text() == "refreshed"
    assert panel.locator("[data-field=error]").inner_text() == ""
    assert page.locator("progress").evaluate("bar => bar.value === bar.max")

    # The public agency page shows the new numbers.
    ids = {agency["name"]: agency["id"] for agency in get_json(f"{base}/nc/api/agency/")}
    assert newcomer in ids
    page.goto(f"{base}/nc/agencies/{ids[ALDER]}/")
    table = page.locator("table[data-endpoint=stops]").first
    header = [cell.strip() for cell in table.locator("thead th").all_inner_texts()]
    rows = [dict(zip(header, (cell.strip() for cell in row.locator("td").all_inner_texts()),
                     strict=True))
            for row in table.locator("tbody tr").all()]
    api = get_json(f"{base}/nc/api/agency/{ids[ALDER]}/stops/")
    assert rows == [{key: str(value) for key, value in row.items()} for row in api]
    (year_2015,) = [row for row in rows if row["year"] == "2015"]
    assert (year_2015["white"], year_2015["black"], year_2015["hispanic"]) == ("1", "1", "0")
    page.goto(f"{base}/nc/agencies/{ids[newcomer]}/")
    assert page.locator("h1").inner_text() == newcomer
    assert page.problems == []

    # A page of another origin posting the dataset form (the session cookie
    # goes along: another port of the same host is the same site) is refused.
    forged_name = f"Forged {tag}"
    forger = ForgingSite(tmp_path / "forger", f"{base}/admin/datasets/",
                         {"state": "nc", "name": forged_name, "date_received": "2026-11-21",
                          "url": f"https://forged.example.org/{tag}.zip", "csrf": "guess"})
    try:
        victim = page.context.new_page()
        with victim.expect_response(lambda answer: answer.request.method == "POST") as posted:
            victim.goto(forger.url)
        assert posted.value.status == 403
        assert "odp_session=" in (posted.value.request.header_value("cookie") or "")
        victim.wait_for_load_state()
        assert "Form refused" in victim.content()
    finally:
        forger.close()
    assert datasets_named(db, forged_name) == 0
