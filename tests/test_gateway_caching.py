"""Response caching: Cache-Control and ETags from the stats generation,
304 for a matching If-None-Match, bodies kept in the real memcached under
the generation, and a cache outage that only costs database reads."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from services.gateway.backends import Deps, build_deps, cache_client, reader_engine
from tests.support.gateway import (
    ALDER,
    gateway_client,
    load_and_refresh,
    row,
    town_release,
)


class RecordingCache:
    """The real memcached client, with a note of every key read and written."""

    def __init__(self, cache):
        self.cache = cache
        self.hits: list[str] = []
        self.writes: list[str] = []

    def get(self, key):
        value = self.cache.get(key)
        if value is not None:
            self.hits.append(key)
        return value

    def set(self, key, value, expire=0):
        self.writes.append(key)
        return self.cache.set(key, value, expire=expire)

    def close(self):
        self.cache.close()


@pytest.fixture
def deps(config):
    deps = Deps(reader_engine(config), RecordingCache(cache_client(config)))
    yield deps
    deps.close()


@pytest.fixture
def statements(deps) -> list[str]:
    """Every SQL statement the app runs."""
    seen: list[str] = []
    event.listen(deps.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *args: seen.append(sql))
    return seen


@pytest.fixture
def client(config, deps):
    with gateway_client(config, deps) as client:
        yield client


def generation(db) -> int:
    return db("SELECT generation FROM stats.generations WHERE state = 'nc'")[0][0]


def test_a_response_carries_cache_control_and_an_etag_with_the_generation(
        client, town, db):
    response = client.simulate_get(f"/nc/api/agency/{town[ALDER]}/stops/")

    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["ETag"].startswith(f'"nc-{generation(db)}-')


def test_the_etag_depends_on_the_path_and_the_query(client, town):
    base = f"/nc/api/agency/{town[ALDER]}"
    etags = {client.simulate_get(path).headers["ETag"] for path in (
        f"{base}/stops/", f"{base}/searches/", f"{base}/stops/?officer=A1")}
    assert len(etags) == 3


def test_a_matching_if_none_match_is_a_304_without_a_body(client, town, statements):
    path = f"/nc/api/agency/{town[ALDER]}/stops/"
    etag = client.simulate_get(path).headers["ETag"]
    statements.clear()

    for header in (etag, f"W/{etag}", f'"other", {etag}'):
        response = client.simulate_get(path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "public, max-age=60"
    # Not even the generation was read: the process remembers it.
    assert statements == []
    for header in ('"other"', "*"):
        assert client.simulate_get(path, headers={"If-None-Match": header}).status_code == 200


def test_a_repeated_request_is_answered_from_memcached(client, deps, town, statements, db):
    path = f"/nc/api/agency/{town[ALDER]}/stops_by_reason/"
    first = client.simulate_get(path)
    statements.clear()
    again = client.simulate_get(path)

    assert again.json == first.json
    assert again.headers["ETag"] == first.headers["ETag"]
    assert deps.cache.hits == [deps.cache.writes[-1]]
    assert deps.cache.hits[0].startswith(f"odp:nc:{generation(db)}.")
    # A hit costs a memcached get and nothing else: no database round trip.
    assert statements == []


def test_a_new_import_and_refresh_change_the_etag_and_the_body(
        config, engine, release, client, town):
    path = f"/nc/api/agency/{town[ALDER]}/stops/"
    before = client.simulate_get(path)

    def one_more_stop(writer):
        town_release(writer)
        writer.stop(9, ALDER, "2016-08-01 10:00:00")
        writer.person(91, 9, "D", 40, "M", "N", "B")

    load_and_refresh(config, engine, release, one_more_stop)
    # A process may answer from the previous generation (a whole release)
    # for up to GENERATION_TTL after a refresh; then it sees the new one.
    time.sleep(config.generation_ttl)
    after = client.simulate_get(path, headers={"If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.json[-1] == row(2016, black=1, native_american=1, other=1, white=1,
                                 hispanic=2, non_hispanic=2)


def test_errors_are_neither_cached_nor_tagged(client, deps, town):
    deps.cache.writes.clear()
    for path in (f"/nc/api/agency/{town[ALDER]}/stops/?officer=a%20b",
                 f"/nc/api/agency/{max(town.values()) + 1}/stops/"):
        response = client.simulate_get(path)
        assert response.status_code in (400, 404)
        assert "ETag" not in response.headers and "Cache-Control" not in response.headers
    assert deps.cache.writes == []


def test_a_cache_outage_answers_from_the_database(config, client, town):
    path = f"/nc/api/agency/{town[ALDER]}/contraband_hit_rate/"
    expected = client.simulate_get(path).json
    down = config.with_changes(memcached_servers=("127.0.0.1:1",))

    with gateway_client(down) as without_cache:
        for _ in range(3):
            response = without_cache.simulate_get(path)
            assert response.status_code == 200
            assert response.json == expected
        assert without_cache.simulate_get("/nc/api/agency/").status_code == 200
        ready = without_cache.simulate_get("/readyz")

    # Still ready: the gateway answers without its cache.
    assert ready.status_code == 200
    assert ready.json["status"] == "degraded"
    assert ready.json["checks"]["cache"] == "down"
    assert ready.json["checks"]["database"] == "up"


def test_an_app_built_from_config_alone_uses_the_real_memcached(config, client, town):
    deps = build_deps(config)
    try:
        with gateway_client(config, deps) as own:
            path = f"/nc/api/agency/{town[ALDER]}/searches/"
            own.simulate_get(path)
            assert own.simulate_get(path).json == client.simulate_get(path).json
    finally:
        deps.close()


def test_a_parameter_the_route_ignores_makes_no_cache_entry_of_its_own(
        client, deps, town, statements):
    # ?bust=... on every request would otherwise send each to the database
    # and fill memcached with copies.
    path = f"/nc/api/agency/{town[ALDER]}/stops/"
    first = client.simulate_get(path)
    statements.clear()
    written = len(deps.cache.writes)
    busted = [client.simulate_get(path, query_string=f"bust={n}&_={n}") for n in range(5)]

    assert {answer.headers["X-Cache"] for answer in busted} == {"hit"}
    assert {answer.headers["ETag"] for answer in busted} == {first.headers["ETag"]}
    assert statements == []
    assert len(deps.cache.writes) == written, "a junk parameter wrote an entry"


def test_the_same_question_in_another_order_is_one_entry(client, deps, town):
    path = f"/nc/api/agency/{town[ALDER]}/stops/"
    one = client.simulate_get(path, query_string="officer=A1&purpose=1&purpose=2")
    other = client.simulate_get(path, query_string="purpose=2&officer=A1&purpose=1&year=")

    assert one.status_code == other.status_code == 200
    assert other.headers["X-Cache"] == "hit"
    assert other.headers["ETag"] == one.headers["ETag"]
    assert other.json == one.json
    # A parameter the route knows still makes a question of its own.
    assert client.simulate_get(path, query_string="officer=A2").headers["ETag"] != one.headers[
        "ETag"]
