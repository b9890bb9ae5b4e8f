"""A nameko service's heartbeat, and the check its probes run.

The service touches `HEARTBEAT_FILE` every few seconds while each of its
message consumers is connected and polling the broker; the probes
(`python -m shared.heartbeat --max-age 30`) read the file's age:

- the file appears only once the service takes messages (startup probe);
- it stops aging only while the consumers poll (readiness, liveness): a
  service whose broker connection is lost, or whose consumer is stuck,
  lets it age, and its probe fails.

An import runs in a worker process and PostgreSQL queries yield to the event
loop (eventlet makes psycopg2 cooperative), so long work never delays the
heartbeat: only a lost broker or a stuck process does.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL = 5.0
# A consumer that has not polled for this long is not connected: kombu's
# consumer loop polls about once a second while its connection is up.
CONSUMER_STALE_AFTER = 15.0


class ConsumerWatch:
    """When each of a runner's queue consumers last polled the broker."""

    def __init__(self, runner):
        from nameko.messaging import QueueConsumer

        self.last_poll: dict[int, float] = {}
        self.consumers = [extension for container in runner.containers
                          for extension in container.subextensions
                          if isinstance(extension, QueueConsumer)]
        for consumer in self.consumers:
            self._watch(consumer)

    def _watch(self, consumer) -> None:
        # kombu's ConsumerMixin calls on_iteration before each wait for
        # messages, and only while connected: the instance attribute wraps
        # nameko's own method without touching the class.
        original = consumer.on_iteration
        key = id(consumer)
        self.last_poll[key] = time.monotonic()

        def on_iteration():
            self.last_poll[key] = time.monotonic()
            return original()

        consumer.on_iteration = on_iteration

    def connected(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return all(now - polled < CONSUMER_STALE_AFTER for polled in self.last_poll.values())


def beat(runner, path: str | Path, interval: float = INTERVAL) -> None:
    """Touch `path` every `interval` seconds while the runner's consumers
    poll the broker; runs in its own green thread until the process ends."""
    import eventlet

    path = Path(path)
    watch = ConsumerWatch(runner)
    lost = False
    while True:
        if watch.connected():
            path.touch()
            if lost:
                log.info("heartbeat: the consumers poll the broker again")
            lost = False
        elif not lost:
            log.warning("heartbeat: a consumer has not polled the broker for %.0f s; "
                        "%s is no longer touched", CONSUMER_STALE_AFTER, path)
            lost = True
        eventlet.sleep(interval)


def age(path: str | Path, now: float | None = None) -> float | None:
    """Seconds since the heartbeat was last touched; None before the first."""
    try:
        modified = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - modified


def check(path: str, max_age: float) -> tuple[bool, str]:
    if not path:
        return False, "HEARTBEAT_FILE is not set: this service writes no heartbeat"
    seconds = age(path)
    if seconds is None:
        return False, f"no heartbeat at {path} yet: the service has not started taking messages"
    if seconds > max_age:
        return False, (f"the heartbeat {path} is {seconds:.0f} s old (limit {max_age:.0f} s): "
                       "the service has lost the broker or is stuck")
    return True, f"heartbeat {seconds:.0f} s old"


def main(argv: list[str] | None = None) -> int:
    from shared.config import Config

    parser = argparse.ArgumentParser(
        prog="python -m shared.heartbeat",
        description="Exit 0 when this container's nameko service touched its heartbeat "
                    "recently (HEARTBEAT_FILE), 1 otherwise: the probes' check.")
    parser.add_argument("--max-age", type=float, default=30.0,
                        help="the oldest heartbeat that still counts, in seconds")
    parser.add_argument("--file", help="the heartbeat file (default: HEARTBEAT_FILE)")
    args = parser.parse_args(argv)
    path = args.file or Config.from_env().heartbeat_file
    ok, message = check(path, args.max_age)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
