"""The nameko services' heartbeat and the probe that reads it.

The probe (`python -m shared.heartbeat`) is what Kubernetes and compose
run; the heartbeat must appear once a service takes messages, keep fresh
while it is connected, age while its broker connection is cut (the cut made
by a TCP proxy in front of the shared RabbitMQ), and come back with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from shared.heartbeat import check
from tests.support.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent


def probe(path: Path, max_age: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.heartbeat", "--max-age", str(max_age)],
                          cwd=ROOT, env={**os.environ, "HEARTBEAT_FILE": str(path)},
                          capture_output=True, text=True, timeout=60)


def wait_until(predicate, timeout: float) -> float:
    """Seconds until predicate() held; AssertionError after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s")


def test_the_probe_fails_without_a_heartbeat_and_names_why(tmp_path):
    missing = probe(tmp_path / "heartbeat", 30)

    assert missing.returncode == 1
    assert "no heartbeat at" in missing.stderr and "not started taking messages" in missing.stderr
    assert check("", 30) == (False, "HEARTBEAT_FILE is not set: this service writes no heartbeat")


def test_the_probe_passes_a_fresh_heartbeat_and_fails_an_old_one(tmp_path):
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    assert probe(heartbeat, 30).returncode == 0

    old = time.time() - 45
    os.utime(heartbeat, (old, old))
    stale = probe(heartbeat, 30)

    assert stale.returncode == 1
    assert "is 45 s old (limit 30 s)" in stale.stderr
    assert probe(heartbeat, 60).returncode == 0


def test_a_service_beats_while_connected_and_stops_while_the_broker_is_cut(
        config, start_service, tmp_path):
    heartbeat = tmp_path / "heartbeat"
    broker = config.amqp_uri.rsplit("/", 1)
    proxy = TcpProxy(("127.0.0.1", 5672))
    try:
        through_proxy = config.with_changes(
            amqp_uri=f"amqp://guest:guest@127.0.0.1:{proxy.port}/{broker[1]}")
        service = start_service("services.census", HEARTBEAT_FILE=str(heartbeat),
                                AMQP_URI=through_proxy.amqp_uri)

        wait_until(heartbeat.exists, 20)
        assert probe(heartbeat, 30).returncode == 0
        first = heartbeat.stat().st_mtime
        wait_until(lambda: heartbeat.stat().st_mtime > first, 20)  # touched again

        proxy.cut()
        cut_at = time.time()
        # The consumers stop polling at once; after CONSUMER_STALE_AFTER the
        # file is no longer touched, and a probe with a short limit fails.
        went_stale = wait_until(lambda: probe(heartbeat, 8).returncode == 1, 60)
        stale_since = heartbeat.stat().st_mtime
        time.sleep(6)
        assert heartbeat.stat().st_mtime == stale_since, "touched while the broker was cut"
        print(f"heartbeat stale {went_stale:.1f} s after the cut")

        proxy.restore()
        back = wait_until(lambda: heartbeat.stat().st_mtime > max(stale_since, cut_at), 90)
        print(f"heartbeat back {back:.1f} s after the broker")
        assert probe(heartbeat, 30).returncode == 0
        assert "heartbeat: a consumer has not polled the broker" in service.log()
    finally:
        proxy.close()
