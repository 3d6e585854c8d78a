"""Headers on every response: no third-party anything, no referrer, no caching of people.
Set by `web.safety_layer`."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'self'; frame-ancestors 'none'; object-src 'none'"
)
STATIC_PREFIX = "/static/"

_ALWAYS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
# Only our own CSS and script may be cached; every page and answer is no-store, so a
# shared or seized device keeps no copy of who was looked up.
_STATIC = (("Cache-Control", "public, max-age=3600"),)
_DYNAMIC = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


# Names and values as ASGI carries them.
RawHeaders = list[tuple[bytes, bytes]]


def _raw(headers: tuple[tuple[str, str], ...]) -> RawHeaders:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


# As ASGI carries them, encoded once: for static files and for everything else.
_RAW_STATIC = _raw(_ALWAYS + _STATIC)
_RAW_DYNAMIC = _raw(_ALWAYS + _DYNAMIC)
_OURS = frozenset(name for name, _ in _RAW_STATIC + _RAW_DYNAMIC)


# Two years, the preload list's minimum; sent only when the site is served over https.
_HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


def response_headers(https: bool) -> tuple[RawHeaders, RawHeaders, frozenset[bytes]]:
    """The headers for static files, for everything else, and the names of all of them
    (any header the app set under one of these names is replaced)."""
    extra = _raw((_HSTS,)) if https else []
    return (
        _RAW_STATIC + extra,
        _RAW_DYNAMIC + extra,
        _OURS | {name for name, _ in extra},
    )
