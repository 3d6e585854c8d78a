"""Settings from environment variables; every variable is documented in the README."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from safevine.domain.publication import DEFAULT_RETENTION_DAYS


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _secret_key() -> bytes:
    """SAFEVINE_SECRET_KEY, or the contents of SAFEVINE_SECRET_KEY_FILE.

    Without either, a random key lives for this process only: fine for the demo, but
    forms and tokens would not survive a restart or work across processes.
    """
    value = os.environ.get("SAFEVINE_SECRET_KEY", "")
    path = os.environ.get("SAFEVINE_SECRET_KEY_FILE", "")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as error:
            raise ConfigError(
                f"SAFEVINE_SECRET_KEY_FILE: cannot read {path} ({error.strerror})"
            ) from None
    if not value:
        return secrets.token_bytes(32)
    if len(value) < 32:
        raise ConfigError("SAFEVINE_SECRET_KEY must be at least 32 characters")
    return value.encode()


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///safevine.db"
    # Optional separate login for the public web path (a role that can read only the
    # public views); without it the public path switches to that role on each connection.
    public_database_url: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    redis_url: str | None = None
    rate_limits_enabled: bool = True
    rate_limit_client: str = "30/minute;300/day"
    rate_limit_identifier: str = "10/hour"
    exit_url: str = "https://www.google.com/"
    demo: bool = False

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("SAFEVINE_DATABASE_URL") or cls.database_url,
            public_database_url=os.environ.get("SAFEVINE_PUBLIC_DATABASE_URL") or None,
            retention_days=_int_env("SAFEVINE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1),
            secret_key=_secret_key(),
            redis_url=os.environ.get("SAFEVINE_REDIS_URL") or None,
            rate_limits_enabled=_bool_env("SAFEVINE_RATE_LIMITS", True),
            rate_limit_client=os.environ.get("SAFEVINE_RATE_LIMIT_CLIENT") or cls.rate_limit_client,
            rate_limit_identifier=os.environ.get("SAFEVINE_RATE_LIMIT_IDENTIFIER")
            or cls.rate_limit_identifier,
            exit_url=os.environ.get("SAFEVINE_EXIT_URL") or cls.exit_url,
            demo=_bool_env("SAFEVINE_DEMO", False),
        )
