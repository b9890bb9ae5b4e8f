"""A real SMTP server on 127.0.0.1 for tests: it keeps every message it is
sent, parsed, with the envelope recipients in an `X-Envelope-To` header."""

from __future__ import annotations

import socket
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller


class SmtpSink:
    def __init__(self):
        self.host = "127.0.0.1"
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()
        # aiosmtpd checks it is up by connecting to its port, so it needs a
        # real port number rather than 0.
        with socket.socket() as probe:
            probe.bind((self.host, 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    async def handle_DATA(self, server, session, envelope) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        # Whatever the sender put there would hide the real envelope.
        del message["X-Envelope-To"]
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, predicate, timeout: float = 30.0) -> EmailMessage:
        """The first message for which predicate(message) is true."""
        def first():
            return next((message for message in self.messages if predicate(message)), None)

        with self._arrived:
            found = self._arrived.wait_for(first, timeout)
            if found is None:
                subjects = [message["Subject"] for message in self.messages]
                raise AssertionError(f"no matching message within {timeout}s; "
                                     f"received: {subjects}")
            return found

    def close(self) -> None:
        self._controller.stop()
