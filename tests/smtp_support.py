"""A real SMTP server on loopback for tests: aiosmtpd's Controller on a free port.

`smtp_server` starts it and points the app at it; `stop()` simulates the server being
down (connections are refused) and `start()` brings it back on the same port.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from flask import Flask


class Inbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = cast(EmailMessage, message_from_bytes(envelope.content, policy=default))
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """An aiosmtpd server that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message received so far."""
        return list(self.inbox.messages)

    def start(self) -> None:
        """Listen (again) on the same port."""
        if self.controller is None:
            self.controller = Controller(self.inbox, hostname=self.host, port=self.port)
            self.controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until `start`."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[EmailMessage]:
        """The messages sent to one address."""
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp_server(app: Flask) -> Iterator[SmtpServer]:
    """A running SMTP server the app sends to."""
    server = SmtpServer()
    server.start()
    app.config.update(SMTP_HOST=server.host, SMTP_PORT=server.port, SMTP_TLS="none")
    try:
        yield server
    finally:
        server.stop()


def text_part(message: EmailMessage) -> str:
    """The plain-text body."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return cast(EmailMessage, part).get_content()


def html_part(message: EmailMessage) -> str:
    """The HTML body."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return cast(EmailMessage, part).get_content()
