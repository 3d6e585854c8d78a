"""The bounce receiver (`safevine bounces`): a small SMTP server that takes the delivery
status notifications mail servers send back to an email's return path
(`bounces+<key>@domain`, see `domain.verp`), reads them (RFC 3464, with `flufl.bounce`,
which also knows the older formats many servers still send) and applies each to the
notification whose key its recipient carries: a hard bounce fails it and marks the
address as bouncing, a soft one sends it again.

It accepts mail only for return paths of the configured bounce address; anything else is
refused at RCPT, so it relays nothing and reads nothing it was not sent for. A message it
cannot read is accepted and left (a bounce server that refused it would get the bounce of
a bounce); it is counted in the log, never quoted: a bounce can hold the mail it returns.
"""

import asyncio
import email
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiosmtpd.controller import Controller
from flufl.bounce import all_failures
from sqlalchemy import Engine

from safevine.config import Settings
from safevine.domain.retry_policy import next_delay
from safevine.domain.verp import key_of
from safevine.store.public import receipts

log = logging.getLogger("safevine.bounces")
# A bounce is small; one far larger is not one (a loop, or abuse) and is refused.
LARGEST = 2_000_000


@dataclass
class BounceHandler:
    settings: Settings
    engine: Engine
    applied: list[receipts.Applied] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if key_of(address, self.settings.bounce_address) is None:
            return "550 5.1.1 not a bounce address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.content
        if len(content) > LARGEST:
            return "552 5.3.4 too large for a bounce"
        keys = [k for r in envelope.rcpt_tos if (k := key_of(r, self.settings.bounce_address))]
        message = email.message_from_bytes(
            content if isinstance(content, bytes) else content.encode()
        )
        try:
            temporary, permanent = all_failures(message)
        except Exception:  # an unreadable report is kept out of the way, not quoted
            log.warning("a bounce could not be read")
            return "250 OK"
        if not (temporary or permanent):
            log.info("mail to a return path that reports no failure")
            return "250 OK"
        for key in keys:
            applied = await asyncio.to_thread(self._apply, key, bool(permanent))
            self.applied.append(applied)
            log.info("bounce: %s", applied.value)
        return "250 OK"

    def _apply(self, key: str, permanent: bool) -> receipts.Applied:
        base = timedelta(seconds=self.settings.retry_base_seconds)
        with self.engine.begin() as connection:
            return receipts.apply_bounce(
                connection, key, permanent, datetime.now(UTC), lambda n: next_delay(n, None, base)
            )


def start_bounce_server(
    settings: Settings, engine: Engine, host: str, port: int
) -> tuple[BounceHandler, Controller]:
    # aiosmtpd logs every line it receives at DEBUG: a bounce quotes the address and
    # often the mail itself, which must never reach a log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = BounceHandler(settings, engine)
    controller = Controller(
        handler, hostname=host, port=port, data_size_limit=LARGEST, server_hostname="safevine"
    )
    controller.start()
    return handler, controller
