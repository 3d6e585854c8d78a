"""Email over SMTP with aiosmtplib: plain text plus HTML, a neutral subject and sender, and
the notification's idempotency key as Message-ID so a resent message can be recognised."""

import asyncio
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib
import httpx

from safevine.config import Settings
from safevine.notify.channels.base import DeliveryResult, OutgoingMessage, Transport, register


@register
class EmailTransport(Transport):
    name = "email"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        _, sender = parseaddr(settings.mail_from)
        self._domain = sender.rpartition("@")[2] or "localhost"

    def build(self, message: OutgoingMessage) -> EmailMessage:
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

    async def _connection(self) -> aiosmtplib.SMTP:
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            pass
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=15,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
        )
        await client.connect()
        if settings.smtp_username:
            await client.login(settings.smtp_username, settings.smtp_password or "")
        return client

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            client = await self._connection()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            return DeliveryResult.transient(f"SMTP connection failed: {error}")
        try:
            errors, response = await client.send_message(self.build(message))
        except aiosmtplib.SMTPRecipientsRefused as error:
            await _quietly_close(client)
            return DeliveryResult.permanent_failure(f"recipient refused: {error}")
        except aiosmtplib.SMTPResponseException as error:
            await _quietly_close(client)
            if 500 <= error.code < 600:
                return DeliveryResult.permanent_failure(f"SMTP {error.code}: {error.message}")
            return DeliveryResult.transient(f"SMTP {error.code}: {error.message}")
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            await _quietly_close(client)
            return DeliveryResult.transient(f"SMTP failed: {error}")
        self._idle.put_nowait(client)
        if errors:
            return DeliveryResult.permanent_failure(f"recipient refused: {errors}")
        return DeliveryResult.sent(response[:200])

    async def close(self) -> None:
        while not self._idle.empty():
            await _quietly_close(self._idle.get_nowait())


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        client.close()
