"""The gateway as a service: health and readiness, routing rules (trailing
slashes, states, methods), errors as JSON without internals, the read-only
database role, the OpenAPI document and the state facts."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import InternalError, ProgrammingError

from services.gateway.backends import build_deps
from tests.support.gateway import (
    ALDER,
    BIRCHWOOD,
    QUIET,
    gateway_client,
)


def test_healthz_says_ok(client):
    response = client.simulate_get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_is_200_when_database_broker_and_cache_answer(client):
    response = client.simulate_get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json["checks"] == {"database": "up", "broker": "up", "cache": "up"}


def test_readyz_stays_ready_but_degraded_without_broker_and_cache(config):
    # The public pages need neither: an orchestrator must keep the gateway
    # in service through a cache restart or a broker outage.
    down = config.with_changes(amqp_uri="amqp://guest:guest@127.0.0.1:1/",
                               memcached_servers=("127.0.0.1:1",))
    with gateway_client(down) as c:
        response = c.simulate_get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json == {"status": "degraded",
                             "checks": {"database": "up", "broker": "down", "cache": "down"}}


def test_a_database_outage_is_a_503_without_internals(config):
    down = config.with_changes(database_url="postgresql://odp@127.0.0.1:1/odp_test")
    with gateway_client(down) as client:
        answer = client.simulate_get("/nc/api/agency/1/stops/")
        ready = client.simulate_get("/readyz")

    assert answer.status_code == 503
    assert answer.json == {"title": "Service Unavailable",
                           "description": "database unavailable"}
    assert ready.status_code == 503 and ready.json["checks"]["database"] == "down"
    assert ready.json["description"] == "database is down"
    assert "127.0.0.1" not in answer.text + ready.text


def test_a_path_without_its_slash_is_redirected_with_its_query(client, town):
    response = client.simulate_get(f"/nc/api/agency/{town[ALDER]}/stops",
                                   query_string="officer=A1")

    assert response.status_code == 301
    assert response.headers["Location"] == f"/nc/api/agency/{town[ALDER]}/stops/?officer=A1"
    assert client.simulate_get("/nc/api/agency").headers["Location"] == "/nc/api/agency/"
    assert client.simulate_get("/healthz").status_code == 200
    assert client.simulate_get("/nc/api/nothing").status_code == 404


@pytest.mark.parametrize("path", ["/zz/api/agency/", "/xx/api/facts/", "/zz/api/agency/1/stops/"])
def test_an_unknown_state_is_a_404(client, path):
    response = client.simulate_get(path)

    assert response.status_code == 404
    assert response.json["description"].startswith("there is no state")


@pytest.mark.parametrize("path", ["/yy/api/agency/", "/yy/api/agency/1/stops/",
                                  "/yy/api/facts/"])
def test_a_state_without_published_numbers_has_no_data_yet(client, db, extra_state, path):
    # A state registered for this test alone: no other test can publish it.
    assert not db("SELECT 1 FROM stats.generations WHERE state = :state",
                  state=extra_state.code)
    response = client.simulate_get(path)

    assert response.status_code == 404
    assert response.json["description"].endswith("has no data yet")


@pytest.mark.parametrize("path", ["/il/api/stops/", "/md/api/stops/",
                                  "/md/api/agency/1/use_of_force/"])
def test_a_route_the_state_does_not_have_is_a_404_saying_so(client, path):
    response = client.simulate_get(path)

    assert response.status_code == 404
    assert response.json["description"].endswith("has no such route")


def test_unknown_paths_and_methods_are_json_errors(client, town):
    missing = client.simulate_get("/nc/api/agency/1/speeding/")
    wrong_method = client.simulate_post("/nc/api/agency/")

    assert missing.status_code == 404
    assert set(missing.json) == {"title", "description"}
    assert wrong_method.status_code == 405
    assert wrong_method.json["title"] == "Method Not Allowed"


def test_the_gateway_database_role_cannot_write(config, town):
    deps = build_deps(config)
    try:
        for _ in range(2):  # the role survives a connection's return to the pool
            with deps.engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == "odp_reader"
                assert conn.execute(text("SELECT count(*) FROM nc.stop")).scalar() == 8
                with pytest.raises((ProgrammingError, InternalError)):
                    conn.execute(text("DELETE FROM nc.stop"))
                conn.rollback()
                with pytest.raises((ProgrammingError, InternalError)):
                    conn.execute(text("UPDATE stats.generations SET generation = 0"))
                conn.rollback()
    finally:
        deps.close()


def test_the_facts_have_the_api_shape(client, town):
    response = client.simulate_get("/nc/api/facts/")

    assert response.status_code == 200
    facts = response.json
    assert list(facts) == ["state", "start_date", "end_date", "total_stops",
                           "total_stops_millions", "total_searches", "total_agencies",
                           "top_agencies", "updated_at"]
    assert {key: facts[key] for key in list(facts)[:7]} == {
        "state": "nc", "start_date": "Mar 01, 2015", "end_date": "Jul 01, 2016",
        "total_stops": 8, "total_stops_millions": 0, "total_searches": 4,
        "total_agencies": 3}
    assert facts["top_agencies"] == [
        {"rank": 1, "id": town[ALDER], "name": ALDER, "stops": 6},
        {"rank": 2, "id": town[BIRCHWOOD], "name": BIRCHWOOD, "stops": 1},
        {"rank": 3, "id": town[QUIET], "name": QUIET, "stops": 1},
    ]
    assert response.headers["Cache-Control"] == "public, max-age=60"


def test_openapi_lists_every_route_with_its_parameters(client):
    document = client.simulate_get("/openapi.json").json

    assert document["openapi"].startswith("3.")
    base = "/{state}/api/agency/{agency_id}/"
    aggregates = ("stops", "stops_by_reason", "searches", "searches_by_type", "use_of_force",
                  "contraband_hit_rate", "stops_by_purpose_group", "arrests",
                  "contraband_types")
    expected = {"/{state}/api/agency/", base, "/{state}/api/facts/", "/{state}/api/stops/",
                "/healthz", "/readyz", "/openapi.json"} | {
        f"{base}{name}/" for name in (*aggregates, "disparities", "officers")} | {
        f"/{{state}}/api/statewide/{name}/" for name in (*aggregates, "disparities")} | {
        "/admin/api/datasets/", "/admin/api/datasets/{dataset_id}/",
        "/admin/api/datasets/{dataset_id}/import/", "/admin/api/imports/",
        "/admin/api/imports/{import_id}/", "/admin/api/agencies/{state}/mapping/",
        "/admin/api/stop-reasons/{state}/", "/admin/api/census/refresh/",
        "/admin/api/census/refresh/{request_id}/"}
    assert set(document["paths"]) == expected

    def parameters(path):
        return {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}

    assert set(parameters(f"{base}stops/")) == {"state", "agency_id", "officer", "from", "to",
                                                "by", "format"}
    assert parameters(f"{base}use_of_force/")["state"]["schema"]["enum"] == ["nc"]
    stops = parameters("/{state}/api/stops/")
    assert set(stops) == {"state", "agency", "officer", "start_date", "end_date", "age",
                          "gender", "race", "ethnicity", "purpose", "action", "page",
                          "page_size"}
    assert stops["agency"]["required"] is True
    assert stops["purpose"]["schema"]["type"] == "array"
    assert stops["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100,
                                            "default": 25}
    assert stops["race"]["schema"]["enum"] == ["A", "B", "I", "U", "W"]


def test_a_path_starting_with_two_slashes_is_not_sent_to_another_site(client):
    response = client.simulate_get("//evil.example")
    assert not (response.headers.get("Location") or "").startswith("//")
    assert client.simulate_get("//evil.example/api/facts").status_code == 404


def test_a_page_answered_304_still_carries_its_security_headers(client, town):
    first = client.simulate_get("/nc/")
    assert first.status_code == 200
    again = client.simulate_get("/nc/", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert "script-src 'self'" in again.headers["Content-Security-Policy"]
