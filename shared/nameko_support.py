"""What every nameko service of the platform shares: the configuration
dependency, a database engine dependency, publishing with a named source,
and the process runner.
"""

from __future__ import annotations

import logging
import signal

from nameko.extensions import DependencyProvider

from shared.config import Config
from shared.db import make_engine

log = logging.getLogger(__name__)

CONFIG_KEY = "ODP_CONFIG"


def container_config(config: Config, max_workers: int | None = None) -> dict:
    """The nameko config dict, carrying the platform's Config object."""
    settings = {**config.nameko_config(), CONFIG_KEY: config}
    if max_workers is not None:
        settings["max_workers"] = max_workers
    return settings


def config_of(container) -> Config:
    return container.config.get(CONFIG_KEY) or Config.from_env()


class Settings(DependencyProvider):
    """The platform's Config, as the service's `config` attribute."""

    def get_dependency(self, worker_ctx):
        return config_of(self.container)


class Database(DependencyProvider):
    """A SQLAlchemy engine built once per container, shared by the workers."""

    def setup(self):
        self.engine = make_engine(config_of(self.container), pool_size=2, max_overflow=4)

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.engine


def handler_queue(config: Config, source: str, event_type: str, service: str,
                  method: str):
    """The queue nameko declares for `service.method`, an @event_handler of
    `source`'s `event_type` (same name and flags, or the broker refuses)."""
    from kombu import Queue
    from nameko.standalone.events import get_event_exchange

    return Queue(f"evt-{source}-{event_type}--{service}.{method}",
                 exchange=get_event_exchange(source, config.nameko_config()),
                 routing_key=event_type, durable=True, auto_delete=False, exclusive=False)


def publisher(config: Config, consumers=None):
    """`dispatch(source, event_type, payload)` that publishes as `source`:
    events relayed from an outbox keep the service that recorded them. The
    source's event exchange is declared on the way, so a publish on a fresh
    broker does not fail for want of it.

    A topic exchange drops what no queue is bound to yet. For events that
    must wait for a consumer that has never run (an import request on a
    fresh broker), `consumers(source, event_type, payload)` names the
    handler queues to declare and bind first, as handler_queue builds them."""
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    nameko_config = config.nameko_config()
    publisher_ = Publisher(config.amqp_uri, serializer="json")

    def dispatch(source: str, event_type: str, payload: dict) -> None:
        exchange = get_event_exchange(source, nameko_config)
        queues = consumers(source, event_type, payload) if consumers else []
        publisher_.publish(payload, exchange=exchange, routing_key=event_type,
                           declare=[exchange, *queues])

    return dispatch


def run_services(service_classes, config: Config, max_workers: int | None = None) -> None:
    """Run nameko services in this (already monkey-patched) process until
    SIGTERM or SIGINT. `max_workers` also bounds how many messages a
    container takes from the broker before acknowledging them."""
    import eventlet
    from nameko.runners import ServiceRunner

    runner = ServiceRunner(container_config(config, max_workers))
    for cls in service_classes:
        runner.add_service(cls)

    stopping = []

    def stop(signum, frame):
        # A second signal (Ctrl-C reaches the whole process group) must not
        # stop the runner twice.
        if not stopping:
            stopping.append(signum)
            eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    log.info("services ready: %s", ", ".join(cls.name for cls in service_classes))
    runner.wait()


def check_broker(amqp_uri: str, timeout: float = 3.0) -> None:
    """Connect to the broker once; raises when it does not answer in time."""
    from kombu import Connection

    with Connection(amqp_uri, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)


def broker_reachable(config: Config, timeout: float = 3.0) -> bool:
    try:
        check_broker(config.amqp_uri, timeout)
        return True
    except Exception:
        return False
