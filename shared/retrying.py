"""One retry policy for every event handler of the platform.

A handler that raises has its message acknowledged and published again to
its queue's retry queue, `<queue>.retry`, with a per-message TTL that
doubles from HANDLER_RETRY_DELAY (capped at a minute). When the TTL runs
out, RabbitMQ dead-letters the message back into the handler's queue
(the retry queue's dead-letter exchange is the default one, keyed with the
handler queue's name). The number of tries travels in the message's
`x-odp-tries` header, so it survives a restart of the service; the service's
only worker never sleeps through the pause.

A failure for want of the database (its connection lost or refused) is
tried again the same way but not counted: an outage longer than the tries
would otherwise bury every event that arrived during it, and most events
(an agency mapping, a stop-reason table, a census load) have no other way
back.

After HANDLER_RETRIES tries, or at once for a payload the handler can never
take (it raises Malformed), the message goes to the service's dead-letter
queue, `<service>.dead-letters`, with the queue, the error and the tries in
its headers, and the failure is logged with the payload's ids. A message
that cannot be re-published (the broker went away) is requeued as nameko
would, which loses nothing.

Why not `requeue_on_error=True`: RabbitMQ puts a requeued message back at
the head of its queue, so a message that always fails is redelivered at
once, without end, and holds up every message behind it.

    @retrying_event_handler("stats", "stats_refreshed")
    def follow(self, payload):
        if "state" not in payload:
            raise Malformed("no state")
"""

from __future__ import annotations

import logging

from kombu import Exchange, Queue
from nameko.events import EventHandler

from shared.config import Config
from shared.db import connection_lost

log = logging.getLogger(__name__)

TRIES_HEADER = "x-odp-tries"
OUTAGES_HEADER = "x-odp-outages"
QUEUE_HEADER = "x-odp-queue"
ERROR_HEADER = "x-odp-error"
MAX_DELAY = 60.0
REQUEUE_PAUSE = 5.0
# The payload fields that name what a message is about, for the logs.
ID_FIELDS = ("import_id", "state", "request_id", "dataset_id", "data_version", "generation")
DEFAULT_EXCHANGE = Exchange("", type="direct")


class Malformed(Exception):
    """A payload no retry can make handleable: it goes to the dead letters at once."""


def dead_letter_queue(service: str) -> Queue:
    return Queue(f"{service}.dead-letters", exchange=DEFAULT_EXCHANGE,
                 routing_key=f"{service}.dead-letters", durable=True, auto_delete=False)


def retry_queue(queue_name: str) -> Queue:
    """Where a failed message of `queue_name` waits out its pause: nothing
    consumes it; an expired message goes back to `queue_name`."""
    name = f"{queue_name}.retry"
    return Queue(name, exchange=DEFAULT_EXCHANGE, routing_key=name, durable=True,
                 auto_delete=False,
                 queue_arguments={"x-dead-letter-exchange": "",
                                  "x-dead-letter-routing-key": queue_name})


def retry_delay(config: Config, tries: int) -> float:
    """The pause before try `tries + 1`."""
    return min(MAX_DELAY, config.handler_retry_delay * 2 ** (tries - 1))


def payload_ids(payload) -> str:
    if not isinstance(payload, dict):
        return repr(payload)[:200]
    ids = [f"{field}={payload[field]}" for field in ID_FIELDS if field in payload]
    return ", ".join(ids) or "no ids"


class RetryingEventHandler(EventHandler):
    """nameko's event handler with the platform's retry policy, and an
    optional routing key of its own for its queue (such as
    `import_requested.md`): nameko binds with the event type.

    Why keep nameko's queue name when binding with another key: the requests
    waiting in the queue at an upgrade are read by the new consumers, and
    the queue names KEDA watches stay. An upgraded queue keeps its binding on
    the plain event type too (a binding lasts as long as its queue), but
    nothing publishes with that key any more."""

    def __init__(self, source_service, event_type, routing_key=None, **kwargs):
        self.routing_key = routing_key
        kwargs.pop("requeue_on_error", None)
        super().__init__(source_service, event_type, requeue_on_error=False, **kwargs)

    def setup(self):
        # nameko names the queue and registers it with the container's queue
        # consumer, which declares and binds it when the container starts.
        super().setup()
        if self.routing_key:
            self.queue.routing_key = self.routing_key
        from nameko.amqp.publish import Publisher

        from shared.nameko_support import config_of

        self.config = config_of(self.container)
        self.publisher = Publisher(self.config.amqp_uri)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        try:
            self._retry_or_bury(message, exc_info[1])
        except Exception:
            log.exception("%s: could not set the failed message aside; it goes back to "
                          "the queue after a pause", self.queue.name)
            import eventlet

            # Requeued at the head of the queue, it would be redelivered at
            # once, and fail the same way, without end.
            eventlet.sleep(REQUEUE_PAUSE)
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)

    def _retry_or_bury(self, message, error: BaseException) -> None:
        headers = dict(message.headers or {})
        what = f"{self.queue.name} ({payload_ids(_payload(message))})"
        reason = f"{type(error).__name__}: {error}"[:1000]
        outages = int(headers.get(OUTAGES_HEADER) or 0)
        lost = connection_lost(error)
        if lost is not None and not isinstance(error, Malformed):
            headers[OUTAGES_HEADER] = outages + 1
            tries = int(headers.get(TRIES_HEADER) or 0)
            delay = retry_delay(self.config, tries + outages + 1)
            self._publish(message, retry_queue(self.queue.name), headers, expiration=delay)
            log.warning("%s: the database is unavailable (%s); tried again in %.0fs, not "
                        "counted as a try", what, lost, delay)
            return
        tries = int(headers.get(TRIES_HEADER) or 0) + 1
        headers[TRIES_HEADER] = tries
        if isinstance(error, Malformed) or tries > self.config.handler_retries:
            queue = dead_letter_queue(self.container.service_name)
            headers.update({QUEUE_HEADER: self.queue.name, ERROR_HEADER: reason})
            self._publish(message, queue, headers)
            log.error("%s: dead-lettered to %s after %d tr%s: %s", what, queue.name, tries,
                      "y" if tries == 1 else "ies", reason)
            return
        delay = retry_delay(self.config, tries + outages)
        self._publish(message, retry_queue(self.queue.name), headers,
                      expiration=delay)  # seconds; kombu sends milliseconds
        log.warning("%s: failed (try %d of %d), tried again in %.0fs: %s", what, tries,
                    self.config.handler_retries + 1, delay, reason)

    def _publish(self, message, queue: Queue, headers: dict, **kwargs) -> None:
        # The body as it came (already serialized) with its content type, so
        # the handler gets exactly the same message back.
        self.publisher.publish(message.body, exchange=DEFAULT_EXCHANGE,
                               routing_key=queue.routing_key, declare=[queue],
                               headers=headers, content_type=message.content_type,
                               content_encoding=message.content_encoding, **kwargs)


def _payload(message):
    try:
        return message.payload
    except Exception:
        return None


retrying_event_handler = RetryingEventHandler.decorator


def service_names() -> list[str]:
    """The platform's nameko services, each with its dead letters."""
    from shared.states import STATES

    return ["admin", "census", "stats", *(state.ingest_service for state in STATES.values())]


def dead_letters(config: Config, service: str, replay: bool = False) -> list[dict]:
    """The messages in `service`'s dead letters: {"queue", "tries", "error",
    "ids", "payload", "replayed"} each. With `replay`, each goes back to its
    handler's queue (when that queue exists) with its counts reset, once what
    failed them is mended; otherwise they stay where they are."""
    from kombu import Connection, Producer

    found = []
    with Connection(config.amqp_uri, connect_timeout=5) as conn:
        channel = conn.channel()
        # Confirmed publishes: a message is acked here only once the broker
        # holds its copy.
        channel.confirm_select()
        queue = dead_letter_queue(service)(channel)
        # Only what is there now: a replayed message that fails again comes
        # back meanwhile, and must not be read (and replayed) twice.
        waiting = queue.queue_declare().message_count
        existing: dict[str, bool] = {}
        for _ in range(waiting):
            message = queue.get(no_ack=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            payload = _payload(message)
            target = headers.get(QUEUE_HEADER)
            sent = False
            if replay and target:
                if target not in existing:
                    existing[target] = _queue_exists(conn, target)
                if existing[target]:
                    kept = {key: value for key, value in headers.items()
                            if key not in (QUEUE_HEADER, ERROR_HEADER, TRIES_HEADER,
                                           OUTAGES_HEADER)}
                    Producer(channel).publish(
                        message.body, exchange="", routing_key=target, headers=kept,
                        content_type=message.content_type,
                        content_encoding=message.content_encoding, delivery_mode=2)
                    message.ack()
                    sent = True
            found.append({"queue": target, "tries": headers.get(TRIES_HEADER),
                          "error": headers.get(ERROR_HEADER), "ids": payload_ids(payload),
                          "payload": payload, "replayed": sent})
        # What was not replayed goes back, in its order, as the channel closes.
        channel.close()
    return found


def _queue_exists(conn, name: str) -> bool:
    probe = conn.channel()
    try:
        probe.queue_declare(queue=name, passive=True)
        return True
    except Exception:  # the broker closes the channel on a missing queue
        return False
    finally:
        try:
            probe.close()
        except Exception:
            pass
