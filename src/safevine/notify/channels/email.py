"""Email over SMTP with aiosmtplib: plain text plus HTML, a neutral subject and sender, and
the notification's idempotency key as Message-ID so a resent message can be recognised."""

import asyncio
import binascii
import secrets
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib
import httpx

from safevine.config import Settings, SmtpRelay
from safevine.domain.verp import return_path
from safevine.notify.channels.base import Transport, register
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage


@register
class EmailTransport(Transport):
    name = "email"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        relays = settings.smtp_relays()
        self._first = relays[0]
        self._relays = {r.name: r for r in relays}
        # Open connections waiting for the next message, per relay.
        self._idle: dict[str, asyncio.Queue[aiosmtplib.SMTP]] = {
            r.name: asyncio.Queue() for r in relays
        }
        name, sender = parseaddr(settings.mail_from)
        self._sender = sender
        self._domain = sender.rpartition("@")[2] or "localhost"
        # Quotes a display name that needs it; a non-ASCII one becomes an encoded word.
        self._from = formataddr((name, sender), charset="utf-8")
        self._subjects: dict[str, str] = {}

    def build(self, message: OutgoingMessage) -> bytes | None:
        """The message as sent: multipart/alternative, text then HTML, both UTF-8 in
        quoted-printable, so every line is 7-bit and short whatever the language. None
        when the address or sender is not plain ASCII: `build_email` handles those.

        Written out directly because `email.message.EmailMessage` spends about 2.5 ms per
        message parsing and re-folding its own headers, most of a worker's time."""
        address = message.address
        if not (
            address.isascii()
            and self._from.isascii()
            and _single_line(address, message.language, self._from)
        ):
            return None
        subject = self._subjects.get(message.rendered.subject)
        if subject is None:
            subject = self._subjects[message.rendered.subject] = _header_value(
                message.rendered.subject, "Subject"
            )
        # QP text never holds "==" at a line start, so this boundary cannot occur in it.
        boundary = f"==_{secrets.token_hex(12)}"
        head = (
            f"From: {self._from}\r\n"
            f"To: {address}\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {formatdate(localtime=False)}\r\n"
            f"Message-ID: <{message.idempotency_key}@{self._domain}>\r\n"
            f"Content-Language: {message.language}\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            "\r\n"
        )
        return b"".join(
            (
                head.encode("ascii"),
                _part(boundary, "plain", message.rendered.text),
                _part(boundary, "html", message.rendered.html),
                f"--{boundary}--\r\n".encode("ascii"),
            )
        )

    def build_email(self, message: OutgoingMessage) -> EmailMessage:
        """The same message through the standard library, for unusual headers."""
        email = EmailMessage()
        email["From"] = self.settings.mail_from
        email["To"] = message.address
        email["Subject"] = message.rendered.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = f"<{message.idempotency_key}@{self._domain}>"
        email["Content-Language"] = message.language
        email.set_content(message.rendered.text)
        email.add_alternative(message.rendered.html, subtype="html")
        return email

    async def _connection(self, relay: SmtpRelay) -> aiosmtplib.SMTP:
        try:
            return self._idle[relay.name].get_nowait()
        except asyncio.QueueEmpty:
            pass
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=15,
            use_tls=relay.security == "tls",
            start_tls=relay.security == "starttls",
        )
        await client.connect()
        if relay.username:
            await client.login(relay.username, relay.password or "")
        return client

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        # A relay no longer configured (removed since the claim): the first.
        relay = self._relays.get(message.provider or "", self._first)
        try:
            client = await self._connection(relay)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            return DeliveryResult.transient(f"SMTP connection to {relay.name} failed: {error}")
        try:
            data = self.build(message)
            errors: dict[str, aiosmtplib.SMTPResponse] = {}
            # With a bounce address, each message's own return path (domain.verp).
            bounces = self.settings.bounce_address
            sender = return_path(bounces, message.idempotency_key) if bounces else self._sender
            if data is None:
                errors, response = await client.send_message(
                    self.build_email(message), sender=sender
                )
            else:
                response = await _transaction(client, sender, message.address, data)
        except aiosmtplib.SMTPRecipientsRefused as error:
            await _quietly_close(client)
            return _refused([r.code for r in error.recipients], str(error))
        except aiosmtplib.SMTPRecipientRefused as error:
            await _quietly_close(client)
            return _refused([error.code], str(error))
        except aiosmtplib.SMTPResponseException as error:
            await _quietly_close(client)
            if 500 <= error.code < 600:
                return DeliveryResult.permanent_failure(f"SMTP {error.code}: {error.message}")
            return DeliveryResult.transient(f"SMTP {error.code}: {error.message}")
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            await _quietly_close(client)
            return DeliveryResult.transient(f"SMTP failed: {error}")
        self._idle[relay.name].put_nowait(client)
        if errors:
            return DeliveryResult.permanent_failure(f"recipient refused: {errors}")
        return DeliveryResult.sent(response[:200], provider=relay.name)

    async def close(self) -> None:
        for idle in self._idle.values():
            while not idle.empty():
                await _quietly_close(idle.get_nowait())


def _refused(codes: list[int], reason: str) -> DeliveryResult:
    """A recipient refused for now (4xx: greylisting, a full mailbox, a busy server) is
    tried again; only a refusal the server calls permanent (5xx) ends the notification."""
    if codes and all(400 <= code < 500 for code in codes):
        return DeliveryResult.transient(f"recipient refused for now: {reason}")
    return DeliveryResult.permanent_failure(f"recipient refused: {reason}")


async def _transaction(client: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes) -> str:
    """MAIL, RCPT and DATA for one recipient; the server's final answer.

    What `sendmail` does for one recipient, less what it repeats: it parses both
    addresses once more before MAIL and RCPT parse them, and re-normalises the message's
    line endings to declare its SIZE, which is optional (RFC 1870) and which `build`
    already wrote in CRLF. A failure raises as from `sendmail`, and the caller drops the
    connection, so no envelope is left half open."""
    await client.mail(sender)
    await client.rcpt(recipient)
    response = await client.data(data)
    return response.message


def _single_line(*values: str) -> bool:
    return not any("\r" in v or "\n" in v for v in values)


def _header_value(value: str, name: str) -> str:
    """ASCII as it is; anything else as RFC 2047 encoded words (UTF-8)."""
    if value.isascii() and _single_line(value):
        return value
    folded = Header(" ".join(value.split()), "utf-8", header_name=name)
    return folded.encode(linesep="\r\n")


def _part(boundary: str, subtype: str, body: str) -> bytes:
    text = body.replace("\r\n", "\n").encode("utf-8")
    # The line break before the next boundary belongs to the boundary, not to the text.
    encoded = binascii.b2a_qp(text, istext=True).replace(b"\n", b"\r\n") + b"\r\n"
    return (
        f"--{boundary}\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
    ).encode("ascii") + encoded


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        client.close()
