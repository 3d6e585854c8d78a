"""safevine: a Victim Information and Notification Exchange, confidential by construction."""

__version__ = "0.1.0"
