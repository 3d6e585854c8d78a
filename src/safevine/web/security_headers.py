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


class SecurityHeaders:
    """Pure ASGI middleware: sets the headers on `http.response.start`, replacing any the
    app set under the same names, without wrapping the response in another one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ours = _RAW_STATIC if scope["path"].startswith(STATIC_PREFIX) else _RAW_DYNAMIC

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in _OURS]
                message["headers"] = kept + ours
            await send(message)

        await self.app(scope, receive, send_with_headers)
