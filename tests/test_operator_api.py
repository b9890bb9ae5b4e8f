"""The operator API through the gateway: tokens, validation, dataset records
and the agency mapping, answered by the admin service driven in process
(`operator_api`, interface tier); the RPC round trip over the real broker
to an admin process, and a stopped admin, at the end (`operator`, e2e).
Imports followed to their end are in test_admin_flow.py."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import OPERATOR_TOKEN, with_operator_calls
from tests.support.gateway import gateway_client


def dataset_body(**changes) -> dict:
    tag = uuid.uuid4().hex[:8]
    body = {"state": "nc", "name": f"NC release {tag}", "date_received": "2026-11-20",
            "url": f"https://data.example.org/nc/{tag}.zip",
            "report_email_1": "ops@example.org"}
    return body | changes


def test_no_token_is_401_and_a_wrong_one_403(operator_api):
    missing = operator_api.call("GET", "/admin/api/datasets/", token=None)
    assert missing.status_code == 401
    assert "Bearer" in missing.json["description"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")

    wrong = operator_api.call("GET", "/admin/api/datasets/", token=OPERATOR_TOKEN + "x")
    assert wrong.status_code == 403
    assert wrong.json["description"] == "the operator token is not valid"

    basic = operator_api.call("GET", "/admin/api/imports/", token=None,
                          headers={"Authorization": f"Basic {OPERATOR_TOKEN}"})
    assert basic.status_code == 401

    # Nothing was created by refused calls.
    body = dataset_body()
    refused = operator_api.call("POST", "/admin/api/datasets/", token="nope", json=body)
    assert refused.status_code == 403
    assert body["name"] not in {dataset["name"] for dataset in
                                operator_api.call("GET", "/admin/api/datasets/").json}


def test_tokens_are_stored_hashed(operator_api, db):
    stored = [row.token_sha256 for row in db("SELECT token_sha256 FROM admin.operator_tokens")]
    assert stored and OPERATOR_TOKEN not in stored
    assert all(len(digest) == 64 for digest in stored)


def test_register_list_and_read_a_dataset(operator_api, db):
    body = dataset_body(destination="nc/2026-11", report_email_2="lawyer@example.org")
    created = operator_api.call("POST", "/admin/api/datasets/", json=body)

    assert created.status_code == 201, created.text
    record = created.json
    assert created.headers["Location"] == f"/admin/api/datasets/{record['id']}/"
    assert {key: record[key] for key in body if key != "destination"} == {
        key: value for key, value in body.items() if key != "destination"}
    assert record["destination"].endswith("/data/nc/2026-11")
    assert record["date_added"] == db("SELECT current_date")[0][0].isoformat()

    assert operator_api.call("GET", f"/admin/api/datasets/{record['id']}/").json == record
    assert record in operator_api.call("GET", "/admin/api/datasets/").json
    missing = operator_api.call("GET", "/admin/api/datasets/999999/")
    assert missing.status_code == 404
    assert missing.json["description"] == "there is no dataset 999999"


@pytest.mark.parametrize("field, value, message", [
    ("state", "va", "must be one of il, md, nc"),
    ("date_received", "2026-02-30", "Not a valid date."),
    ("date_received", "20/11/2026", "Not a valid date."),
    ("report_email_1", "not-an-address", "Not a valid email address."),
    ("report_email_2", "a@", "Not a valid email address."),
    ("url", "gopher://example.org/release.zip", "the scheme must be one of http, https, ftp"),
    ("url", "file:///etc/passwd", None),
    ("url", "https:///no-host.zip", "the URL names no host"),
    ("destination", "../../etc", "must be a folder inside the data folder"),
    ("destination", "/tmp/elsewhere", "must be a folder inside the data folder"),
    ("name", "", "Length must be between 1 and 200."),
    ("colour", "blue", "Unknown field."),
])
def test_a_bad_field_is_a_400_naming_it(operator_api, admin_config, field, value, message):
    if field == "url" and value.startswith("file:"):
        # file:// is accepted only where the configuration allows it.
        assert admin_config.allow_file_urls
        accepted = operator_api.call("POST", "/admin/api/datasets/",
                                 json=dataset_body(url=f"file:///{uuid.uuid4().hex}.zip"))
        assert accepted.status_code == 201, accepted.text
        return
    response = operator_api.call("POST", "/admin/api/datasets/",
                                 json=dataset_body(**{field: value}))

    assert response.status_code == 400, response.text
    assert list(response.json["errors"]) == [field]
    assert message in response.json["errors"][field]
    assert field in response.json["description"]


def test_file_urls_are_refused_unless_enabled(admin_config, engine):
    from services.gateway.backends import Deps, cache_client, reader_engine
    from tests.support.admin import InProcessAdmin
    from tests.support.gateway import gateway_client

    config = admin_config.with_changes(allow_file_urls=False)
    deps = Deps(reader_engine(config), cache_client(config), InProcessAdmin(config, engine))
    with gateway_client(config, deps) as client:
        response = client.simulate_post(
            "/admin/api/datasets/", json=dataset_body(url="file:///srv/release.zip"),
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    deps.close()
    assert response.status_code == 400
    assert response.json["errors"]["url"] == "the scheme must be one of http, https, ftp"


def test_missing_fields_and_a_body_that_is_not_an_object(operator_api):
    response = operator_api.call("POST", "/admin/api/datasets/", json={"state": "nc"})
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"name", "date_received", "url"}

    response = operator_api.call("POST", "/admin/api/datasets/", json=["nc"])
    assert response.status_code == 400
    assert response.json["errors"] == {"body": "must be a JSON object"}

    response = operator_api.call("POST", "/admin/api/datasets/", body="{not json",
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["errors"]["body"].startswith("must be JSON (")


def test_deeply_nested_json_is_a_400_not_a_500(operator_api):
    for path in ("/admin/api/datasets/", "/admin/api/census/refresh/"):
        response = operator_api.call("POST", path, body="[" * 30_000 + "]" * 30_000,
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json["errors"] == {"body": "is nested too deeply"}


def test_a_large_body_is_refused_unread_with_a_413(operator_api):
    huge = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    response = operator_api.call("POST", "/admin/api/datasets/", body=huge,
                                 headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json == {"title": "Request Entity Too Large",
                             "description": "the JSON body is larger than 64 KB"}
    # No token: 401 first, the body never read.
    assert operator_api.call("POST", "/admin/api/datasets/", body=huge, token=None,
                             headers={"Content-Type": "application/json"}).status_code == 401


def test_a_used_name_or_url_is_a_409(operator_api):
    first = operator_api.call("POST", "/admin/api/datasets/", json=dataset_body())
    assert first.status_code == 201

    same_name = operator_api.call("POST", "/admin/api/datasets/",
                              json=dataset_body(name=first.json["name"]))
    assert same_name.status_code == 409
    assert same_name.json["description"].startswith("name: ")

    same_url = operator_api.call("POST", "/admin/api/datasets/",
                             json=dataset_body(url=first.json["url"]))
    assert same_url.status_code == 409
    assert same_url.json["description"].startswith("url: ")


def test_imports_of_unknown_datasets_and_bad_filters(operator_api):
    assert operator_api.call("POST", "/admin/api/datasets/424242/import/").status_code == 404
    assert operator_api.call("GET", "/admin/api/imports/424242/").status_code == 404
    bad = operator_api.call("GET", "/admin/api/imports/", params={"status": "lost"})
    assert bad.status_code == 400
    assert list(bad.json["errors"]) == ["status"]


def test_agency_mapping_upload_is_checked_line_by_line(operator_api):
    path = "/admin/api/agencies/nc/mapping/"
    good = "code,name,geoid\nDURHAM POLICE DEPT,Durham Police Department,1600000US3719000\n" \
           "ALDER PD,Alder Police Department,\n"
    response = operator_api.call("PUT", path, body=good, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json == {"state": "nc", "rows": 2}
    assert operator_api.call("GET", path).json == [
        {"code": "ALDER PD", "name": "Alder Police Department", "geoid": None},
        {"code": "DURHAM POLICE DEPT", "name": "Durham Police Department",
         "geoid": "1600000US3719000"}]

    for body, expected in [
        ("code,name\nA,B\n", "line 1: the header must be code,name,geoid"),
        ("code,name,geoid\nA,,\n", "line 2, column name: must not be empty"),
        ("code,name,geoid\nA,B,\nC,D,37063\n",
         "line 3, column geoid: '37063' is not a census GEO_ID"),
        ("code,name,geoid\nA,B,\nA,C,\n", "line 3, column code: 'A' is already mapped on line 2"),
        ("code,name,geoid\nA,B\n", "line 2: 2 columns where 3 (code,name,geoid) are expected"),
    ]:
        response = operator_api.call("PUT", path, body=body)
        assert response.status_code == 400, body
        assert expected in response.json["errors"]["body"], response.json

    # A refused upload left the mapping as it was.
    assert len(operator_api.call("GET", path).json) == 2
    assert operator_api.call("PUT", "/admin/api/agencies/va/mapping/",
                         body="code,name,geoid\n").status_code == 404


def test_census_refresh_is_accepted(operator_api, db):
    response = operator_api.call("POST", "/admin/api/census/refresh/", json={"year": 2022})
    assert response.status_code == 202
    assert response.json["status"] == "requested"
    (payload,) = [row.payload for row in db(
        "SELECT payload FROM admin.outbox WHERE event_type = 'census_requested' "
        "AND payload->>'request_id' = :id", id=response.json["request_id"])]
    assert payload["years"] == [2022]
    bad = operator_api.call("POST", "/admin/api/census/refresh/", json={"year": "soon"})
    assert bad.status_code == 400 and list(bad.json["errors"]) == ["year"]


def test_over_the_broker_and_with_admin_stopped(operator, start_service, admin_config):
    """The round trip over the broker: answers and refusals cross as themselves;
    then, with admin stopped, a 503 naming it."""
    refused = operator.call("POST", "/admin/api/datasets/", json=dataset_body(state="va"))
    assert refused.status_code == 400
    assert refused.json["errors"] == {"state": "must be one of il, md, nc"}
    created = operator.call("POST", "/admin/api/datasets/", json=dataset_body())
    assert created.status_code == 201
    assert operator.call("GET", f"/admin/api/datasets/{created.json['id']}/").json == \
        created.json
    assert operator.call("GET", "/admin/api/datasets/", token="wrong").status_code == 403
    start_service.stop_all("services.admin")
    with gateway_client(admin_config.with_changes(admin_rpc_timeout=2)) as client:
        response = with_operator_calls(client).call("GET", "/admin/api/datasets/")
    assert response.status_code == 503
    assert "admin" in response.json["description"]


def test_openapi_describes_the_operator_routes(client):
    document = client.simulate_get("/openapi.json").json
    datasets = document["paths"]["/admin/api/datasets/"]
    assert set(datasets) == {"get", "post"}
    assert "201" in datasets["post"]["responses"] and "409" in datasets["post"]["responses"]
    assert datasets["post"]["security"] == [{"operatorToken": []}]
    schema = document["components"]["schemas"]["DatasetIn"]
    assert set(schema["required"]) == {"state", "name", "date_received", "url"}
    assert schema["properties"]["report_email_1"]["format"] == "email"
    assert set(document["paths"]["/admin/api/agencies/{state}/mapping/"]) == {"get", "put"}
    assert "202" in document["paths"]["/admin/api/datasets/{dataset_id}/import/"]["post"][
        "responses"]


def test_a_destination_holding_a_states_import_folders_is_refused(operator_api):
    response = operator_api.call("POST", "/admin/api/datasets/",
                                 json=dataset_body(destination="md"))
    assert response.status_code == 400
    assert "holds the default folders of md imports" in response.json["errors"]["destination"]


def test_a_destination_inside_an_imports_folder_is_refused(operator_api, admin_config):
    # nc/12 is import 12's folder: its files would be loaded as this release.
    response = operator_api.call("POST", "/admin/api/datasets/",
                                 json=dataset_body(destination="nc/12"))

    assert response.status_code == 400
    root = admin_config.data_dir.resolve()
    assert response.json["errors"]["destination"] == (
        f"{root / 'nc' / '12'} is in {root / 'nc' / '12'}, the folder of nc import 12; "
        "choose a folder of its own")
    inside = operator_api.call("POST", "/admin/api/datasets/",
                               json=dataset_body(destination="nc/12/unpacked"))
    assert inside.status_code == 400


def test_a_destination_overlapping_another_datasets_folder_is_refused(operator_api,
                                                                     admin_config):
    tag = uuid.uuid4().hex[:8]
    first = operator_api.call("POST", "/admin/api/datasets/",
                              json=dataset_body(destination=f"releases-{tag}/a"))
    assert first.status_code == 201, first.text
    folder = admin_config.data_dir.resolve() / f"releases-{tag}" / "a"

    for overlapping in (f"releases-{tag}/a", f"releases-{tag}/a/inner", f"releases-{tag}"):
        response = operator_api.call("POST", "/admin/api/datasets/",
                                     json=dataset_body(destination=overlapping))
        assert response.status_code == 400, overlapping
        assert response.json["errors"]["destination"] == (
            f"overlaps {folder}, the folder of dataset {first.json['name']!r}; choose a "
            "folder of its own")
    beside = operator_api.call("POST", "/admin/api/datasets/",
                               json=dataset_body(destination=f"releases-{tag}/b"))
    assert beside.status_code == 201, beside.text


@pytest.mark.parametrize("url, where", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://10.1.2.3/STOPS_Extract.zip", "10.1.2.3 is a private address"),
    ("ftp://192.168.0.10/STOPS_Extract.zip", "192.168.0.10 is a private address"),
])
def test_a_dataset_url_into_a_private_network_is_refused(operator_api, url, where):
    # Server-side request forgery: the ingest service would fetch it from
    # inside the platform's network.
    response = operator_api.call("POST", "/admin/api/datasets/", json=dataset_body(url=url))

    assert response.status_code == 400
    assert response.json["errors"]["url"].startswith(where)


def test_a_second_import_of_a_dataset_under_way_is_a_409(operator_api):
    dataset = operator_api.call("POST", "/admin/api/datasets/", json=dataset_body()).json
    path = f"/admin/api/datasets/{dataset['id']}/import/"
    first = operator_api.call("POST", path)
    again = [operator_api.call("POST", path) for _ in range(3)]

    assert first.status_code == 202 and first.json["status"] == "queued"
    assert [answer.status_code for answer in again] == [409] * 3
    assert again[0].json["description"] == (
        f"dataset {dataset['name']!r} already has import {first.json['import_id']} queued; follow "
        f"it (odp imports show {first.json['import_id']}) or wait for it to end")
    queued = operator_api.call("GET", "/admin/api/imports/", params={"status": "queued"}).json
    assert [record["id"] for record in queued if record["dataset_id"] == dataset["id"]] == [
        first.json["import_id"]]


def test_the_operator_api_is_a_503_while_the_database_is_down(admin_config, engine):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from services.gateway.backends import Deps, cache_client, reader_engine
    from shared.db import sqlalchemy_url
    from tests.support.admin import InProcessAdmin
    from tests.support.tcp_proxy import TcpProxy

    proxy = TcpProxy(("127.0.0.1", 5432))
    url = make_url(admin_config.database_url).set(host="127.0.0.1", port=proxy.port)
    admin_engine = create_engine(sqlalchemy_url(url.render_as_string(hide_password=False)),
                                 pool_pre_ping=True, connect_args={"connect_timeout": 2})
    deps = Deps(engine=reader_engine(admin_config), cache=cache_client(admin_config),
                admin=InProcessAdmin(admin_config, admin_engine))
    try:
        with gateway_client(admin_config, deps) as client:
            client = with_operator_calls(client)
            up = client.call("GET", "/admin/api/datasets/")
            proxy.cut()
            down = client.call("GET", "/admin/api/datasets/")
            added = client.call("POST", "/admin/api/datasets/", json=dataset_body())
    finally:
        proxy.close()
        deps.close()
        admin_engine.dispose()

    assert up.status_code == 200
    for answer in (down, added):
        assert answer.status_code == 503, answer.text
        assert answer.json == {"title": "Service Unavailable",
                               "description": "the database is unavailable; try again shortly"}


def test_a_call_admin_takes_up_too_late_is_not_run(operator, start_service, admin_config):
    """Admin stalled (SIGSTOP) past the gateway's timeout: the client is told
    503, and when admin resumes the call does not run after all (before, a
    dataset was created and an import requested after their 503s). Either
    the call's message expired in admin's queue, or admin, which had taken
    it, saw its deadline passed."""
    import signal
    import time

    from services.gateway.admin_rpc import AdminClient
    from services.gateway.errors import Unavailable
    from shared.operator import token_digest

    [admin] = [service for service in start_service.started
               if service.module == "services.admin"]
    body = dataset_body(name="NC stalled", url="ftp://nc.example/stalled.zip")
    impatient = AdminClient(admin_config.with_changes(admin_rpc_timeout=2))
    admin.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(Unavailable):
            impatient.call("add_dataset", token_digest(OPERATOR_TOKEN), body)
    finally:
        admin.process.send_signal(signal.SIGCONT)
        impatient.close()
    time.sleep(3)  # admin works through what it received while stopped
    names = [dataset["name"] for dataset in operator.call("GET", "/admin/api/datasets/").json]
    assert "NC stalled" not in names
    again = operator.call("POST", "/admin/api/datasets/", json=body)
    assert again.status_code == 201, again.json
