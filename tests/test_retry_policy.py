"""The platform's one retry policy (shared/retrying.py), on the real broker
and the real service processes: a handler that keeps failing is tried a
bounded number of times with a growing pause, then its message goes to the
service's dead letters; a malformed payload goes there at once; the service
handles the next message meanwhile; the count travels with the message, so
a restart does not reset it."""

from __future__ import annotations

import time

import pytest
from kombu import Connection

from shared.config import Config
from shared.nameko_support import publisher
from shared.retrying import (
    ERROR_HEADER,
    QUEUE_HEADER,
    TRIES_HEADER,
    dead_letter_queue,
    payload_ids,
    retry_delay,
)

RETRIES = 2
FAST = {"HANDLER_RETRIES": str(RETRIES), "HANDLER_RETRY_DELAY": "0.2"}


def dead_letters(config: Config, service: str, count: int, timeout: float = 30.0) -> list:
    """The first `count` messages of `service`'s dead letters, as (payload,
    headers), waiting for them."""
    found = []
    deadline = time.monotonic() + timeout
    with Connection(config.amqp_uri) as conn:
        queue = dead_letter_queue(service)(conn.default_channel)
        queue.declare()
        while len(found) < count and time.monotonic() < deadline:
            message = queue.get(no_ack=True)
            if message is None:
                time.sleep(0.1)
                continue
            found.append((message.payload, dict(message.headers)))
    assert len(found) == count, f"{service}: {len(found)} dead letters of {count}: {found}"
    return found


def test_the_pause_doubles_up_to_a_minute():
    config = Config(handler_retry_delay=2.0)
    assert [retry_delay(config, tries) for tries in (1, 2, 3, 6, 7, 20)] == [
        2.0, 4.0, 8.0, 60.0, 60.0, 60.0]


def test_the_log_names_a_payload_by_its_ids():
    assert payload_ids({"import_id": "7", "state": "nc", "url": "x"}) == \
        "import_id=7, state=nc"
    assert payload_ids({"rows": []}) == "no ids"
    assert payload_ids("not a dict") == "'not a dict'"


def test_a_poison_event_is_dead_lettered_after_the_bound_and_the_next_is_handled(
        config, start_service):
    """An import_progress past bigint fails in the database every time (it was
    requeued without end, 31 times a minute); a malformed one sent after it
    reaches the dead letters first, so the poison held nothing up."""
    admin = start_service("services.admin", **FAST)
    dispatch = publisher(config)
    poison = {"import_id": "1", "state": "nc", "phase": "load Stop.txt", "done": 2**63,
              "total": None}
    dispatch("ingest_nc", "import_progress", poison)
    dispatch("ingest_nc", "import_progress", {"import_id": "2", "state": "nc"})

    (first, first_headers), (second, second_headers) = dead_letters(config, "admin", 2)
    assert first["import_id"] == "2" and first_headers[TRIES_HEADER] == 1
    assert "phase" in first_headers[ERROR_HEADER]
    assert second == poison
    assert second_headers[TRIES_HEADER] == RETRIES + 1
    assert second_headers[QUEUE_HEADER] == \
        "evt-ingest_nc-import_progress--admin.follow_ingest_nc_import_progress"
    assert "out of range" in second_headers[ERROR_HEADER]
    log = admin.log()
    assert log.count("tried again in") == RETRIES
    assert "import_id=1, state=nc" in log and "dead-lettered to admin.dead-letters" in log


def test_the_count_travels_with_the_message(config, start_service):
    """A message that was tried before a restart carries its count: one more
    failure and it is dead-lettered, not tried from scratch."""
    start_service("services.admin", **FAST)
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    exchange = get_event_exchange("ingest_nc", config.nameko_config())
    poison = {"import_id": "3", "state": "nc", "phase": "x", "done": 2**63, "total": None}
    Publisher(config.amqp_uri).publish(poison, exchange=exchange,
                                       routing_key="import_progress",
                                       headers={TRIES_HEADER: RETRIES})
    [(payload, headers)] = dead_letters(config, "admin", 1)
    assert payload == poison and headers[TRIES_HEADER] == RETRIES + 1


@pytest.mark.parametrize(("module", "service", "source", "event", "payload"), [
    ("services.stats", "stats", "ingest_nc", "dataset_loaded",
     {"import_id": "4", "state": "nc"}),
    ("services.stats", "stats", "admin", "agency_mapping_updated", {"state": "nc"}),
    ("services.census", "census", "admin", "census_requested", {"years": "all"}),
    ("services.ingest", "ingest_nc", "admin", "import_requested.nc",
     {"import_id": "5", "state": "nc"}),
    ("services.ingest", "ingest_md", "admin", "stop_reasons_updated", {"state": "md"}),
    ("services.admin", "admin", "stats", "stats_refreshed", {"state": "nc"}),
    ("services.admin", "admin", "census", "census_loaded", {"request_id": "r"}),
])
def test_every_handler_dead_letters_a_malformed_payload_at_once(
        config, start_service, module, service, source, event, payload):
    start_service(module, **FAST)
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    Publisher(config.amqp_uri).publish(
        payload, exchange=get_event_exchange(source, config.nameko_config()),
        routing_key=event)
    [(dead, headers)] = dead_letters(config, service, 1)
    assert dead == payload
    assert headers[TRIES_HEADER] == 1
    assert headers[ERROR_HEADER].startswith("Malformed: ")


def test_odp_lists_the_dead_letters_and_sends_them_back(config, start_service):
    """`odp dead-letters` shows what a service gave up on, and leaves it there;
    --replay sends it back to its handler (this one fails again: it is still
    malformed)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    admin = start_service("services.admin", **FAST)
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    Publisher(config.amqp_uri).publish(
        {"state": "nc", "import_id": "77"},
        exchange=get_event_exchange("stats", config.nameko_config()),
        routing_key="stats_refreshed")

    def odp(*argv) -> str:
        done = subprocess.run([sys.executable, "-m", "odp", "dead-letters", *argv], cwd=ROOT,
                              env=config.as_environ(), capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    deadline = time.monotonic() + 30
    while "1 message(s) dead-lettered" not in (listed := odp("--service", "admin",
                                                              "--payloads")):
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)
    assert "evt-stats-stats_refreshed--admin.follow_stats_refreshed  tries 1  " \
           "import_id=77, state=nc" in listed
    assert "error: Malformed: stats_refreshed" in listed
    assert '"import_id": "77"' in listed
    # Listing took nothing away.
    assert "1 message(s) dead-lettered" in odp("--service", "admin")

    assert "1 message(s) sent back to their queues, 0 kept" in odp("--service", "admin",
                                                                  "--replay")
    deadline = time.monotonic() + 30
    while admin.log().count("import_id=77, state=nc") < 2:
        assert time.monotonic() < deadline, admin.log()
        time.sleep(0.2)
    [(payload, headers)] = dead_letters(config, "admin", 1)
    assert payload["import_id"] == "77" and headers[TRIES_HEADER] == 1


def test_an_outage_of_the_database_is_not_counted_as_a_try(config, start_service):
    """An event that cannot be applied because the database is away waits the
    outage out (a stop-reason table, a mapping or a census load has no other
    way back), while one that fails for itself is still bounded (above)."""
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    from tests.support.waiting import wait_until

    ingest = start_service("services.ingest", **FAST,
                           DATABASE_URL="postgresql://127.0.0.1:1/nowhere")
    Publisher(config.amqp_uri).publish(
        {"state": "md", "rows": [{"stem": "speed", "purpose": "Speed Limit Violation"}],
         "updated_at": "2026-11-30T00:00:00+00:00"},
        exchange=get_event_exchange("admin", config.nameko_config()),
        routing_key="stop_reasons_updated")
    wait_until(lambda: ingest.log().count("not counted as a try") > RETRIES + 1, timeout=60,
               what="more outage retries than the bound")
    with Connection(config.amqp_uri) as conn:
        queue = dead_letter_queue("ingest_md")(conn.default_channel)
        assert queue.queue_declare().message_count == 0
    assert "dead-lettered" not in ingest.log()
