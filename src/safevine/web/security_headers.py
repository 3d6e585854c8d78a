"""Headers on every response: no third-party anything, no referrer, no caching of people."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def _raw(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


# As ASGI carries them, encoded once: for static files and for everything else.
_RAW_STATIC = _raw(_ALWAYS + _STATIC)
_RAW_DYNAMIC = _raw(_ALWAYS + _DYNAMIC)
_OURS = frozenset(name for name, _ in _RAW_STATIC + _RAW_DYNAMIC)


# Two years, the preload list's minimum; sent only when the site is served over https.
_HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


class SecurityHeaders:
    """Pure ASGI middleware: sets the headers on `http.response.start`, replacing any the
    app set under the same names, without wrapping the response in another one.

    `https`: the public base URL is https, so browsers are told never to use plain http
    here (a first visit over http could be read or rewritten on the way)."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        extra = _raw((_HSTS,)) if https else []
        self._static = _RAW_STATIC + extra
        self._dynamic = _RAW_DYNAMIC + extra
        self._ours = _OURS | {name for name, _ in extra}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ours = self._static if scope["path"].startswith(STATIC_PREFIX) else self._dynamic
        replaced = self._ours

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in replaced]
                message["headers"] = kept + ours
            await send(message)

        await self.app(scope, receive, send_with_headers)
