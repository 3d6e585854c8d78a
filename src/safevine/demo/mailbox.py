"""The demo's mail server: an aiosmtpd server on 127.0.0.1 that keeps the latest messages
in memory, so a newcomer can read what safevine sent without any real mail account."""

import email
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

KEPT = 200


@dataclass(frozen=True)
class Letter:
    received_at: datetime
    to: str
    subject: str
    text: str


def _text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


class Mailbox:
    def __init__(self) -> None:
        self._letters: deque[Letter] = deque(maxlen=KEPT)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content)
        letter = Letter(
            datetime.now(UTC),
            ", ".join(envelope.rcpt_tos),
            str(message.get("Subject", "")),
            _text(message),
        )
        with self._lock:
            self._letters.appendleft(letter)
        return "250 OK"

    def letters(self) -> list[Letter]:
        with self._lock:
            return list(self._letters)


def start_mail_server(port: int) -> tuple[Mailbox, Controller]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return mailbox, controller
