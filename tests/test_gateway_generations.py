"""What a gateway process knows of each state's generation
(services/gateway/generations.py): read from PostgreSQL at most once per
GENERATION_TTL, kept through a database outage, so cached answers need no
database and survive its loss."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from services.gateway.backends import Deps, cache_client, reader_engine
from services.gateway.generations import Generations
from shared.db import sqlalchemy_url
from tests.support.gateway import ALDER, gateway_client
from tests.support.tcp_proxy import TcpProxy


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def statements_of(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *args: seen.append(sql))
    return seen


def bump(db_engine, state: str = "nc") -> None:
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE stats.generations SET generation = generation + 1 "
                          "WHERE state = :state"), {"state": state})


def through_proxy(config, proxy: TcpProxy) -> str:
    """The gateway's reader URL, over TCP through the proxy."""
    url = make_url(config.reader_url()).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


def test_the_generation_is_read_once_per_ttl(config, engine, town):
    reader = reader_engine(config)
    statements = statements_of(reader)
    clock = Clock()
    generations = Generations(reader, ttl=1.0, clock=clock)
    try:
        first = generations.current("nc")
        bump(engine)
        clock.now += 0.9
        within = [generations.current("nc") for _ in range(50)]
        clock.now += 0.2
        after = generations.current("nc")
    finally:
        reader.dispose()

    assert {generation.number for generation in within} == {first.number}
    assert after.number == first.number + 1
    assert len([sql for sql in statements if "stats.generations" in sql]) == 2


def test_a_state_without_numbers_is_none_and_remembered_as_such(config, town):
    reader = reader_engine(config)
    try:
        generations = Generations(reader, ttl=60)
        assert generations.current("zz") is None
        assert generations.seen["zz"][0] is None
    finally:
        reader.dispose()


def test_the_last_generation_seen_outlives_a_database_outage(config, town):
    proxy = TcpProxy(("127.0.0.1", 5432))
    reader = create_engine(sqlalchemy_url(through_proxy(config, proxy)), pool_pre_ping=True,
                           connect_args={"connect_timeout": 2})
    clock = Clock()
    generations = Generations(reader, ttl=1.0, clock=clock)
    try:
        seen = generations.current("nc")
        proxy.cut()
        clock.now += 5
        kept = generations.current("nc")
        with pytest.raises(OperationalError):
            generations.current("md")  # never seen: nothing to keep
    finally:
        proxy.close()
        reader.dispose()

    assert kept == seen


def test_cached_answers_are_served_while_the_database_is_down(config, town):
    proxy = TcpProxy(("127.0.0.1", 5432))
    down_config = config.with_changes(reader_database_url=through_proxy(config, proxy),
                                      generation_ttl=0.0)
    deps = Deps(reader_engine(down_config), cache_client(config))
    cached = f"/nc/api/agency/{town[ALDER]}/stops/"
    uncached = f"/nc/api/agency/{town[ALDER]}/searches/?officer=nobody-{proxy.port}"
    try:
        with gateway_client(down_config, deps) as client:
            before = client.simulate_get(cached)
            proxy.cut()
            during = [client.simulate_get(cached) for _ in range(3)]
            miss = client.simulate_get(uncached)
            ready = client.simulate_get("/readyz")
            proxy.restore()
            deps.engine.dispose()
            miss_after = client.simulate_get(uncached)
    finally:
        proxy.close()
        deps.close()

    assert before.status_code == 200
    assert [(answer.status_code, answer.json) for answer in during] == [
        (200, before.json)] * 3
    assert miss.status_code == 503 and miss.json["description"] == "database unavailable"
    assert ready.status_code == 503
    assert miss_after.status_code == 200
