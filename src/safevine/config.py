"""Settings from environment variables; every variable is documented in the README."""

import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///safevine.db"
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("SAFEVINE_DATABASE_URL") or cls.database_url,
            retention_days=_int_env("SAFEVINE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1),
        )
