"""Watching the events the services publish, as a real consumer would: an
exclusive queue bound to each service's nameko event exchange."""

from __future__ import annotations

import threading
import time
import uuid

from kombu import Connection, Exchange, Queue


class EventListener:
    def __init__(self, amqp_uri: str, sources: list[str]):
        self.events: list[tuple[str, str, dict]] = []
        self.error: Exception | None = None
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(amqp_uri, sources),
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("event listener could not connect to the broker")

    def _run(self, amqp_uri: str, sources: list[str]) -> None:
        with Connection(amqp_uri) as conn:
            token = uuid.uuid4().hex[:8]
            queues = [Queue(f"test-events-{token}-{source}", exclusive=True, auto_delete=True,
                            routing_key="#",
                            exchange=Exchange(f"{source}.events", type="topic", durable=True))
                      for source in sources]

            def on_message(body, message):
                source = message.delivery_info["exchange"].removesuffix(".events")
                with self._lock:
                    self.events.append((source, message.delivery_info["routing_key"], body))
                    self._lock.notify_all()
                message.ack()

            with conn.Consumer(queues, callbacks=[on_message]):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        continue
                    except Exception as error:
                        # Closed under us: the test ended, or its vhost was
                        # dropped (conftest.leave_nothing_behind).
                        self.error = error
                        return

    def of(self, event_type: str, import_id: str | None = None) -> list[dict]:
        with self._lock:
            return [payload for _, kind, payload in self.events
                    if kind == event_type
                    and (import_id is None or payload.get("import_id") == import_id)]

    def wait_for(self, event_type: str, import_id: str | None = None,
                 timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if self.error is not None:
                    raise AssertionError(f"the event listener lost the broker: {self.error}")
                found = self.of_locked(event_type, import_id)
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(kind, payload.get("import_id")) for _, kind, payload in self.events]
                    raise AssertionError(f"no {event_type} for {import_id} within {timeout}s; "
                                         f"seen: {seen[-20:]}")
                self._lock.wait(remaining)

    def of_locked(self, event_type, import_id):
        return [payload for _, kind, payload in self.events
                if kind == event_type
                and (import_id is None or payload.get("import_id") == import_id)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
