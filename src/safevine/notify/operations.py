"""Messages to the agency's operations address, sent by the worker with the dispatcher's
transports and the same retries: first of all the audit chain's head, every day.

A head that reached the operations mailbox is a witness outside the database: if entries
at the end of the chain are later removed, `safevine audit verify` finds the head it sent
missing (each sent head stays as a checkpoint), and the mailbox holds it even if the
checkpoints were removed too (`audit verify --expect-head`). One message that cannot be
sent never stops another, nor any notification: each is tried on its own, and fails
alone after `MAX_ATTEMPTS`.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update

from safevine.config import Settings
from safevine.failures import describe
from safevine.notify.channels.base import Transport
from safevine.notify.messages import Rendered
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage
from safevine.store.public.tables import operations_messages

log = logging.getLogger("safevine.worker")
MAX_ATTEMPTS = 12
HEAD = "audit_head"
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class Tick:
    queued: int
    sent: int
    failed: int


def _head(connection: Connection) -> tuple[int, str] | None:
    if connection.dialect.name == "postgresql":
        row = connection.execute(text("SELECT seq, hash FROM audit_head()")).first()
    else:
        row = connection.execute(text("SELECT seq, hash FROM audit_head")).first()
    return (int(row.seq), str(row.hash)) if row else None


def queue_head(connection: Connection, settings: Settings, now: datetime) -> int:
    """Queue the chain's head for each operations address, unless one was queued within
    the interval (by this worker or another). How many were queued."""
    addresses = settings.operations_addresses()
    if not addresses:
        return 0
    last = connection.execute(
        select(operations_messages.c.created_at)
        .where(operations_messages.c.kind == HEAD)
        .order_by(operations_messages.c.created_at.desc())
        .limit(1)
    ).scalar()
    if last is not None and now - last < timedelta(hours=settings.audit_head_every_hours):
        return 0
    head = _head(connection)
    if head is None:
        return 0
    seq, link = head
    body = (
        f"The safevine audit log's newest entry is number {seq}, link {link}, "
        f"as of {now.isoformat(timespec='seconds')}. Keep this message: "
        "`safevine audit verify --expect-head " + link + "` proves no entry up to it "
        "was removed or changed."
    )
    for channel in addresses:
        connection.execute(
            insert(operations_messages).values(
                kind=HEAD,
                channel=channel,
                subject=f"safevine audit head: entry {seq}",
                body=body,
                payload={"kind": HEAD, "seq": seq, "link": link, "at": now.isoformat()},
                state="queued",
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(addresses)


# How often the sender looks for queued operations messages. An alert that a facility is
# down is queued by the staff service's clock in another process; looking is one small
# indexed query, so a message waits seconds, not the half minute it once did (the
# evaluation's own period comes on top).
LOOK_EVERY_SECONDS = 5.0


class OperationsSender:
    def __init__(
        self, settings: Settings, engine: Engine, transports: dict[str, Transport]
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.transports = transports

    async def run(self, stop: asyncio.Event, every_seconds: float = LOOK_EVERY_SECONDS) -> None:
        while not stop.is_set():
            try:
                await self.tick(datetime.now(UTC))
            except Exception as error:  # the next tick tries again
                log.warning("operations messages failed", extra=describe(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_seconds)

    async def tick(self, now: datetime) -> Tick:
        with self.engine.begin() as connection:
            queued = queue_head(connection, self.settings, now)
            due = connection.execute(
                select(operations_messages)
                .where(
                    # A message left `sending` past its lease (a worker that died while
                    # sending it) is due again.
                    operations_messages.c.state.in_(("queued", "retrying", "sending")),
                    operations_messages.c.next_attempt_at <= now,
                )
                .order_by(operations_messages.c.id)
                .limit(20)
            ).all()
            lease = now + timedelta(seconds=self.settings.worker_lease_seconds)
            claimed = [row for row in due if self._claim(connection, row, lease)]
        sent = failed = 0
        for row in claimed:
            result = await self._send(row)
            final = self._record(row, result, now)
            sent += result.ok
            failed += final
        return Tick(queued, sent, failed)

    @staticmethod
    def _claim(connection: Connection, row: Any, lease: datetime) -> bool:
        """Compare-and-set on the state and due time, so that two workers never take one
        message at once; taken until `lease`."""
        taken = connection.execute(
            update(operations_messages)
            .where(
                operations_messages.c.id == row.id,
                operations_messages.c.state == row.state,
                operations_messages.c.next_attempt_at == row.next_attempt_at,
            )
            .values(state="sending", next_attempt_at=lease)
        )
        return taken.rowcount == 1

    async def _send(self, row: Any) -> DeliveryResult:
        address = self.settings.operations_addresses().get(row.channel)
        transport = self.transports.get(row.channel)
        if not address or transport is None:
            return DeliveryResult.permanent_failure(f"no operations {row.channel} is configured")
        rendered = Rendered(
            subject=row.subject,
            text=row.body,
            html="",
            sms=row.body,
            voice=row.body,
            data=dict(row.payload),
        )
        message = OutgoingMessage(f"operations-{row.id}", address, rendered, "en")
        try:
            return await transport.send(message)
        except Exception as error:
            return DeliveryResult.transient(describe(error)["error"])

    def _record(self, row: Any, result: DeliveryResult, now: datetime) -> bool:
        """Store the outcome; True when the message has now failed for good."""
        attempts = int(row.attempts) + 1
        final = not result.ok and (result.permanent or attempts >= MAX_ATTEMPTS)
        wait = min(
            RETRY_CAP, timedelta(seconds=self.settings.retry_base_seconds * 2 ** (attempts - 1))
        )
        values: dict[str, Any] = {"attempts": attempts}
        if result.ok:
            values.update(state="sent", sent_at=now, last_error=None)
        else:
            values.update(
                state="failed" if final else "retrying",
                next_attempt_at=now + wait,
                last_error=result.error[:500],
            )
        with self.engine.begin() as connection:
            connection.execute(
                update(operations_messages)
                .where(operations_messages.c.id == row.id)
                .values(**values)
            )
        return final
