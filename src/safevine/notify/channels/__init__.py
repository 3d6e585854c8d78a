"""Delivery channels, one small module each behind the `Transport` interface."""

from safevine.notify.channels import email, sms, voice, webhook  # noqa: F401 - registers them
from safevine.notify.channels.base import TRANSPORTS, Transport
from safevine.notify.outgoing import DeliveryResult

__all__ = ["TRANSPORTS", "DeliveryResult", "Transport"]
