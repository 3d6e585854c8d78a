"""Settings from environment variables; every variable is documented in the README."""

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from safevine.domain.call_repeats import RepeatRules
from safevine.domain.feed_health import HealthRules
from safevine.domain.provider_health import FailoverRules
from safevine.domain.publication import DEFAULT_RETENTION_DAYS
from safevine.domain.retention import RetentionPeriods
from safevine.domain.value_ranges import FEED_LINE_BYTES, MIN_FEED_LINE_BYTES


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _limits_env(name: str, default: str, *, single: bool = False) -> str:
    """Rate limits as the `limits` library writes them ("30/minute;300/day"), checked
    here so that a typo stops the start with the variable's name."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        items = parse_many(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be limits such as '30/minute;300/day', not {raw!r}"
        ) from None
    if any(item.amount < 1 or item.multiples < 1 for item in items):
        raise ConfigError(f"{name} must allow at least 1 in a period, not {raw!r}")
    if single and len(items) != 1:
        raise ConfigError(f"{name} must be one limit such as '20/hour', not {raw!r}")
    return raw


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


def _bounce_address(raw: str) -> str:
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    if address and (not at or not local or "." not in domain or "+" in local or " " in address):
        raise ConfigError(
            f"SAFEVINE_BOUNCE_ADDRESS must be an address like bounces@agency.example, not {raw!r}"
        )
    return address


def _call_repeats() -> RepeatRules:
    try:
        return RepeatRules.from_env()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _failover_rules() -> FailoverRules:
    try:
        return FailoverRules.from_env()
    except ValueError as error:
        raise ConfigError(str(error)) from None


# Further providers and relays are numbered 2 to this: SAFEVINE_SMS_2_API_BASE, ...
MOST_PROVIDERS = 9
# notifications.provider and sending_via are VARCHAR(60).
PROVIDER_NAME_LENGTH = 60


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url)[:PROVIDER_NAME_LENGTH]


def _named(hosts: list[str]) -> list[str]:
    """Each provider's name: its host, numbered when two share one (two accounts)."""
    names = []
    for number, host in enumerate(hosts, start=1):
        name = host if hosts.count(host) == 1 else f"{host[:56]}#{number}"
        names.append(name)
    return names


@dataclass(frozen=True)
class PhoneProvider:
    """A Twilio-compatible API for texts and calls."""

    name: str
    api_base: str
    account_sid: str
    auth_token: str = field(repr=False)
    sms_from: str
    voice_from: str


@dataclass(frozen=True)
class SmtpRelay:
    name: str
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    security: str


def _more_phone_providers() -> tuple[PhoneProvider, ...]:
    """SAFEVINE_SMS_<n>_API_BASE (and _ACCOUNT_SID, _AUTH_TOKEN, _FROM, and
    SAFEVINE_VOICE_<n>_FROM) for n from 2: providers to fail over to, in order."""
    found = []
    for n in range(2, MOST_PROVIDERS + 1):
        base = os.environ.get(f"SAFEVINE_SMS_{n}_API_BASE", "").strip().rstrip("/")
        if not base:
            continue
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
            raise ConfigError(f"SAFEVINE_SMS_{n}_API_BASE must be an http(s) URL, not {base!r}")
        sms_from = os.environ.get(f"SAFEVINE_SMS_{n}_FROM", "")
        found.append(
            PhoneProvider(
                name="",
                api_base=base,
                account_sid=os.environ.get(f"SAFEVINE_SMS_{n}_ACCOUNT_SID", ""),
                auth_token=os.environ.get(f"SAFEVINE_SMS_{n}_AUTH_TOKEN", ""),
                sms_from=sms_from,
                voice_from=os.environ.get(f"SAFEVINE_VOICE_{n}_FROM") or sms_from,
            )
        )
    return tuple(found)


def _more_smtp_relays() -> tuple[SmtpRelay, ...]:
    """SAFEVINE_SMTP_<n>_HOST (and _PORT, _USERNAME, _PASSWORD, _SECURITY) for n from 2."""
    found = []
    for n in range(2, MOST_PROVIDERS + 1):
        host = os.environ.get(f"SAFEVINE_SMTP_{n}_HOST", "").strip()
        if not host:
            continue
        found.append(
            SmtpRelay(
                name="",
                host=host,
                port=_int_env(f"SAFEVINE_SMTP_{n}_PORT", 25, 1),
                username=os.environ.get(f"SAFEVINE_SMTP_{n}_USERNAME") or None,
                password=os.environ.get(f"SAFEVINE_SMTP_{n}_PASSWORD") or None,
                security=_choice_env(
                    f"SAFEVINE_SMTP_{n}_SECURITY", "none", ("none", "starttls", "tls")
                ),
            )
        )
    return tuple(found)


def _public_urls() -> tuple[str | None, tuple[str, ...]]:
    """SAFEVINE_PUBLIC_DATABASE_URL: the public login on the primary, then, comma-separated,
    on each search replica (a comma inside a password is written %2C)."""
    raw = os.environ.get("SAFEVINE_PUBLIC_DATABASE_URL", "")
    urls = [url.strip() for url in raw.split(",") if url.strip()]
    if not urls:
        return None, ()
    for url in urls[1:]:
        if not url.startswith("postgresql"):
            scheme = url.split(":")[0]
            raise ConfigError(
                f"SAFEVINE_PUBLIC_DATABASE_URL: a search replica must be PostgreSQL, not {scheme!r}"
            )
    return urls[0], tuple(urls[1:])


def _retention() -> RetentionPeriods:
    try:
        return RetentionPeriods.from_env()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _feed_rules() -> HealthRules:
    try:
        return HealthRules.from_env()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _choice_env(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _networks_env(name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, each checked."""
    networks = []
    for part in os.environ.get(name, "").split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{name}: {entry[:64]!r} is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return tuple(networks)


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


def configured_secret_key() -> bytes | None:
    """SAFEVINE_SECRET_KEY (or its file) when one is set; None, not a random key, when not."""
    if not (os.environ.get("SAFEVINE_SECRET_KEY") or os.environ.get("SAFEVINE_SECRET_KEY_FILE")):
        return None
    try:
        return _secret_key()
    except ConfigError:
        return None


def _old_secret_keys() -> tuple[bytes, ...]:
    """SAFEVINE_OLD_SECRET_KEYS: earlier keys, comma-separated, kept only to decrypt."""
    raw = os.environ.get("SAFEVINE_OLD_SECRET_KEYS", "")
    return tuple(part.strip().encode() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///safevine.db"
    # Optional separate login for the public web path (a role that can read only the
    # public views); without it the public path switches to that role on each connection.
    public_database_url: str | None = None
    # PostgreSQL streaming replicas public searches read from (SAFEVINE_PUBLIC_DATABASE_URL
    # after its first URL): each person a replica finds is confirmed on the primary
    # (`store.public.replica_lookup`).
    search_replica_urls: tuple[str, ...] = ()
    # On SQLite, public searches' lookups run in a lookup process beside each web process
    # (`store.public.lookup_process`), off its serving thread. `safevine serve` does so
    # unless SAFEVINE_SEARCH_LOOKUP_PROCESS is false; an app built from Settings() in a
    # test or a script looks up in its own process.
    search_lookup_process: bool = False
    retention_days: int = DEFAULT_RETENTION_DAYS
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    redis_url: str | None = None
    rate_limits_enabled: bool = True
    rate_limit_client: str = "30/minute;300/day"
    # Searches for the same identifiers from one client (never from everyone: a count
    # shared by all would let one party lock everybody else out of a person).
    rate_limit_identifier: str = "10/hour"
    # Different clients searching the same identifiers within the period before it is a
    # crowd: the staff are told once and every answer for them waits `search_crowd_delay`
    # seconds (docs/rate-limits.md).
    search_crowd: str = "20/hour"
    search_crowd_delay: int = 5
    exit_url: str = "https://www.google.com/"
    demo: bool = False
    # True when SAFEVINE_SECRET_KEY (or its file) was set; serve and worker insist on it
    # outside the demo, since encrypted contacts must outlive the process.
    secret_key_configured: bool = False
    old_secret_keys: tuple[bytes, ...] = ()
    # Where people reach the site; links in messages point here.
    public_base_url: str = "http://127.0.0.1:8000"
    # Where staff reach the staff service (an internal address); HSTS when https.
    staff_base_url: str = "http://127.0.0.1:8001"
    # A number registrants can call, named in discreet messages.
    help_phone: str = ""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: str = "none"  # none, starttls or tls
    mail_from: str = "Notifications <notifications@localhost>"
    # Where bounces go, as `bounces@domain`: each email's return path is then
    # `bounces+<key>@domain` (domain.verp), received by `safevine bounces`. Empty: the
    # sender's address, and bounces are not read.
    bounce_address: str = ""
    sms_api_base: str = "https://api.twilio.com"
    sms_account_sid: str = ""
    sms_auth_token: str = field(default="", repr=False)
    sms_from: str = ""
    voice_from: str = ""
    # Webhooks to loopback or private addresses are refused unless this is on (tests, demo).
    webhook_allow_private: bool = False
    registration_limit_address: str = "3/hour;10/day"
    registration_limit_client: str = "10/hour;30/day"
    worker_batch: int = 100
    worker_concurrency: int = 20
    # A claim not finished within this long is taken again (a worker that died mid-batch).
    worker_lease_seconds: int = 300
    retry_base_seconds: float = 30.0
    # A text or call still `sent` this long after the provider took it has had no receipt.
    receipt_wait_minutes: int = 30
    # Clearing a protection takes a second, different staff member's confirmation.
    two_person_clear: bool = True
    log_level: str = "INFO"
    # A feed line longer than this is rejected without being read whole into memory.
    feed_max_line_bytes: int = FEED_LINE_BYTES
    # Staff sign-in: sessions end after this long idle or this long at all; this many
    # failures in a row lock an account; this many from one client in 15 minutes stop it.
    staff_idle_minutes: int = 15
    staff_session_hours: int = 8
    staff_lockout_after: int = 5
    staff_client_failures: int = 20
    # The agency's operations address (email and/or an https webhook): the worker sends the
    # audit chain's head there every `audit_head_every_hours`.
    operations_email: str = ""
    operations_webhook: str = ""
    audit_head_every_hours: int = 24
    # The staff service evaluates every facility's feed health this often (0: never; then
    # run `safevine feed-health evaluate` on a schedule instead).
    feed_health_every_seconds: int = 300
    # Expected cadences and the silence that makes a facility down (domain.feed_health).
    feed_rules: HealthRules = field(default_factory=HealthRules)
    # How often, and how long, an unconfirmed call is repeated (domain.call_repeats).
    call_repeats: RepeatRules = field(default_factory=RepeatRules)
    # The agency's OpenID Connect provider for staff sign-in (optional).
    staff_oidc_issuer: str = ""
    staff_oidc_client_id: str = ""
    staff_oidc_client_secret: str = field(default="", repr=False)
    # Providers to fail over to, after the one above (config: SAFEVINE_SMS_2_..., and
    # SAFEVINE_SMTP_2_...), and when traffic moves away from one (domain.provider_health).
    more_phone_providers: tuple[PhoneProvider, ...] = ()
    more_smtp_relays: tuple[SmtpRelay, ...] = ()
    failover: FailoverRules = field(default_factory=FailoverRules)
    # Proxies whose X-Forwarded-For names the client (addresses or CIDR networks). None by
    # default: from anyone else the header is ignored, loopback included.
    trusted_proxies: tuple[str, ...] = ()
    # How long what identifies someone is kept (`domain.retention`; SAFEVINE_KEEP_*), and
    # how often the worker purges what is past it (0: never; `safevine purge` still does).
    retention: RetentionPeriods = field(default_factory=RetentionPeriods)
    purge_every_hours: int = 24

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("SAFEVINE_DATABASE_URL") or cls.database_url,
            public_database_url=_public_urls()[0],
            search_replica_urls=_public_urls()[1],
            search_lookup_process=_bool_env("SAFEVINE_SEARCH_LOOKUP_PROCESS", True),
            retention_days=_int_env("SAFEVINE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1),
            secret_key=_secret_key(),
            redis_url=os.environ.get("SAFEVINE_REDIS_URL") or None,
            rate_limits_enabled=_bool_env("SAFEVINE_RATE_LIMITS", True),
            rate_limit_client=_limits_env("SAFEVINE_RATE_LIMIT_CLIENT", cls.rate_limit_client),
            rate_limit_identifier=_limits_env(
                "SAFEVINE_RATE_LIMIT_IDENTIFIER", cls.rate_limit_identifier
            ),
            search_crowd=_limits_env("SAFEVINE_SEARCH_CROWD", cls.search_crowd, single=True),
            registration_limit_address=_limits_env(
                "SAFEVINE_REGISTRATION_LIMIT_ADDRESS", cls.registration_limit_address
            ),
            registration_limit_client=_limits_env(
                "SAFEVINE_REGISTRATION_LIMIT_CLIENT", cls.registration_limit_client
            ),
            search_crowd_delay=_int_env("SAFEVINE_SEARCH_CROWD_DELAY", cls.search_crowd_delay, 0),
            exit_url=os.environ.get("SAFEVINE_EXIT_URL") or cls.exit_url,
            demo=_bool_env("SAFEVINE_DEMO", False),
            secret_key_configured=bool(
                os.environ.get("SAFEVINE_SECRET_KEY") or os.environ.get("SAFEVINE_SECRET_KEY_FILE")
            ),
            old_secret_keys=_old_secret_keys(),
            public_base_url=(
                os.environ.get("SAFEVINE_PUBLIC_BASE_URL") or cls.public_base_url
            ).rstrip("/"),
            staff_base_url=(os.environ.get("SAFEVINE_STAFF_BASE_URL") or cls.staff_base_url).rstrip(
                "/"
            ),
            help_phone=os.environ.get("SAFEVINE_HELP_PHONE", ""),
            smtp_host=os.environ.get("SAFEVINE_SMTP_HOST") or cls.smtp_host,
            smtp_port=_int_env("SAFEVINE_SMTP_PORT", cls.smtp_port, 1),
            smtp_username=os.environ.get("SAFEVINE_SMTP_USERNAME") or None,
            smtp_password=os.environ.get("SAFEVINE_SMTP_PASSWORD") or None,
            smtp_security=_choice_env(
                "SAFEVINE_SMTP_SECURITY", "none", ("none", "starttls", "tls")
            ),
            mail_from=os.environ.get("SAFEVINE_MAIL_FROM") or cls.mail_from,
            bounce_address=_bounce_address(os.environ.get("SAFEVINE_BOUNCE_ADDRESS", "")),
            sms_api_base=(os.environ.get("SAFEVINE_SMS_API_BASE") or cls.sms_api_base).rstrip("/"),
            sms_account_sid=os.environ.get("SAFEVINE_SMS_ACCOUNT_SID", ""),
            sms_auth_token=os.environ.get("SAFEVINE_SMS_AUTH_TOKEN", ""),
            sms_from=os.environ.get("SAFEVINE_SMS_FROM", ""),
            voice_from=os.environ.get("SAFEVINE_VOICE_FROM")
            or os.environ.get("SAFEVINE_SMS_FROM", ""),
            webhook_allow_private=_bool_env("SAFEVINE_WEBHOOK_ALLOW_PRIVATE", False),
            worker_batch=_int_env("SAFEVINE_WORKER_BATCH", cls.worker_batch, 1),
            worker_concurrency=_int_env("SAFEVINE_WORKER_CONCURRENCY", cls.worker_concurrency, 1),
            worker_lease_seconds=_int_env("SAFEVINE_WORKER_LEASE_SECONDS", 300, 1),
            retry_base_seconds=float(_int_env("SAFEVINE_RETRY_BASE_SECONDS", 30, 1)),
            receipt_wait_minutes=_int_env("SAFEVINE_RECEIPT_WAIT_MINUTES", 30, 1),
            two_person_clear=_bool_env("SAFEVINE_TWO_PERSON_CLEAR", True),
            log_level=_choice_env(
                "SAFEVINE_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
            ).upper(),
            feed_max_line_bytes=_int_env(
                "SAFEVINE_FEED_MAX_LINE_BYTES", FEED_LINE_BYTES, MIN_FEED_LINE_BYTES
            ),
            trusted_proxies=_networks_env("SAFEVINE_TRUSTED_PROXIES"),
            retention=_retention(),
            purge_every_hours=_int_env("SAFEVINE_PURGE_EVERY_HOURS", 24, 0),
            staff_oidc_issuer=os.environ.get("SAFEVINE_STAFF_OIDC_ISSUER", "").strip().rstrip("/"),
            staff_oidc_client_id=os.environ.get("SAFEVINE_STAFF_OIDC_CLIENT_ID", "").strip(),
            staff_oidc_client_secret=os.environ.get("SAFEVINE_STAFF_OIDC_CLIENT_SECRET", ""),
            operations_email=os.environ.get("SAFEVINE_OPERATIONS_EMAIL", "").strip(),
            operations_webhook=os.environ.get("SAFEVINE_OPERATIONS_WEBHOOK", "").strip(),
            audit_head_every_hours=_int_env("SAFEVINE_AUDIT_HEAD_EVERY_HOURS", 24, 1),
            feed_health_every_seconds=_int_env("SAFEVINE_FEED_HEALTH_EVERY_SECONDS", 300, 0),
            feed_rules=_feed_rules(),
            call_repeats=_call_repeats(),
            more_phone_providers=_more_phone_providers(),
            more_smtp_relays=_more_smtp_relays(),
            failover=_failover_rules(),
            staff_idle_minutes=_int_env("SAFEVINE_STAFF_IDLE_MINUTES", 15, 1),
            staff_session_hours=_int_env("SAFEVINE_STAFF_SESSION_HOURS", 8, 1),
            staff_lockout_after=_int_env("SAFEVINE_STAFF_LOCKOUT_AFTER", 5, 1),
            staff_client_failures=_int_env("SAFEVINE_STAFF_CLIENT_FAILURES", 20, 1),
        )

    def operations_addresses(self) -> dict[str, str]:
        """Where operations alerts go, by channel (email, webhook): only those set."""
        found = {"email": self.operations_email, "webhook": self.operations_webhook}
        return {channel: address for channel, address in found.items() if address}

    def phone_providers(self) -> tuple[PhoneProvider, ...]:
        """Every SMS and voice provider, the first (SAFEVINE_SMS_API_BASE...) first, each
        named by its host."""
        first = PhoneProvider(
            "",
            self.sms_api_base,
            self.sms_account_sid,
            self.sms_auth_token,
            self.sms_from,
            self.voice_from,
        )
        every = [first, *self.more_phone_providers]
        names = _named([_host(p.api_base) for p in every])
        return tuple(replace(p, name=name) for p, name in zip(every, names, strict=True))

    def smtp_relays(self) -> tuple[SmtpRelay, ...]:
        """Every SMTP relay, the first (SAFEVINE_SMTP_HOST...) first, each named by its host."""
        first = SmtpRelay(
            "",
            self.smtp_host,
            self.smtp_port,
            self.smtp_username,
            self.smtp_password,
            self.smtp_security,
        )
        every = [first, *self.more_smtp_relays]
        names = _named([r.host[:PROVIDER_NAME_LENGTH] for r in every])
        return tuple(replace(r, name=name) for r, name in zip(every, names, strict=True))
