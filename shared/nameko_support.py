"""What every nameko service of the platform shares: the configuration
dependency, a database engine dependency, publishing with a named source,
and the process runner.
"""

from __future__ import annotations

import logging
import signal

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from shared.config import Config
from shared.db import make_engine
from shared.events import ADMIN_SOURCE, IMPORT_HANDLER, IMPORT_REQUESTED, import_routing_key
from shared.events import routing_key as event_routing_key
from shared.states import STATES

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


class OutboxRelay:
    """Mixin of a service with an outbox: `relay_outbox` publishes pending
    events every 10 s (eagerly at start), and `publish_now` after a change,
    leaving to the timer what fails. A subclass names its `outbox_table`
    and may give its own `outbox_publisher`."""

    outbox_table = None

    def outbox_publisher(self):
        return publisher(self.config)

    @timer(interval=10, eager=True)
    def relay_outbox(self) -> None:
        from shared import outbox

        sent = outbox.relay(self.db, self.outbox_publisher(), table=self.outbox_table)
        if sent:
            log.info("published %d event(s) from the outbox", sent)

    def publish_now(self) -> None:
        try:
            self.relay_outbox()
        except Exception:  # stays in the outbox; the timer sends it
            log.exception("could not publish the outbox now")


def add_state_handlers(cls, event_type: str, method, name: str = "{method}_{state}"):
    """Give `cls` one handler of `event_type` for each state of STATES, bound
    to that state's ingest service (nameko binds a handler to one source),
    each calling `method(self, payload)`. Every per-state handler of the
    platform is made here, so a registered state is heard everywhere.
    `name` is formatted with method, state, source and event. Each handler
    has the platform's retry policy (shared/retrying.py)."""
    from shared.retrying import retrying_event_handler
    from shared.states import STATES

    for state in STATES.values():
        def handle(self, payload: dict, _method=method) -> None:
            _method(self, payload)

        handle.__name__ = name.format(method=method.__name__, state=state.code,
                                      source=state.ingest_service, event=event_type)
        setattr(cls, handle.__name__, retrying_event_handler(
            state.ingest_service, event_type)(handle))
    return cls


def handler_queue(config: Config, source: str, event_type: str, service: str,
                  method: str, routing_key: str | None = None):
    """The queue nameko declares for `service.method`, an @event_handler of
    `source`'s `event_type` (same name and flags, or the broker refuses),
    bound with `routing_key` (a retrying_event_handler's own) or the event type."""
    from kombu import Queue
    from nameko.standalone.events import get_event_exchange

    return Queue(f"evt-{source}-{event_type}--{service}.{method}",
                 exchange=get_event_exchange(source, config.nameko_config()),
                 routing_key=routing_key or event_type, durable=True, auto_delete=False,
                 exclusive=False)


def import_queue(config: Config, state: str):
    """`ingest_<state>`'s queue of import requests, bound with the state's
    key: the queue KEDA scales the state's ingest Deployment on."""
    return handler_queue(config, ADMIN_SOURCE, IMPORT_REQUESTED, STATES[state].ingest_service,
                         IMPORT_HANDLER, routing_key=import_routing_key(state))


def publisher(config: Config, consumers=None):
    """`dispatch(source, event_type, payload)` that publishes as `source`:
    events relayed from an outbox keep the service that recorded them. The
    routing key is shared.events.routing_key's (an import request's carries
    its state). The source's event exchange is declared on the way, so a
    publish on a fresh broker does not fail for want of it.

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
        publisher_.publish(payload, exchange=exchange,
                           routing_key=event_routing_key(event_type, payload),
                           declare=[exchange, *queues])

    return dispatch


def main(service_module: str, part: str | None = None, max_workers: int | None = None,
         before=None, select=None) -> None:
    """What `python -m services.<name>` runs: read the settings, load the
    state packages (with their `part` for this service), then import
    `service_module`, whose per-state handlers are built from STATES as it
    is imported, and run its SERVICES (those `select(cls)` keeps, when
    given). `before(config)` runs first."""
    import importlib

    from shared.logs import setup_logging
    from shared.states import load_state_packages

    config = Config.from_env()
    setup_logging(config.log_level, log_format=config.log_format)
    load_state_packages(config.state_packages, part)
    if before is not None:
        before(config)
    services = importlib.import_module(service_module).SERVICES
    if select is not None:
        services = tuple(cls for cls in services if select(cls))
    if config.metrics_port:
        from shared.metrics import serve_metrics

        serve_metrics(config.metrics_port)
    run_services(services, config, max_workers)


def run_services(service_classes, config: Config, max_workers: int | None = None) -> None:
    """Run nameko services in this (already monkey-patched) process until
    SIGTERM or SIGINT, touching the heartbeat file (when configured) while
    they take messages. `max_workers` also bounds how many messages a
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
    if config.heartbeat_file:
        from shared.heartbeat import beat

        eventlet.spawn_n(beat, runner, config.heartbeat_file)
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
