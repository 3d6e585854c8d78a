"""The one cookie: a short-lived, signed CSRF token for forms (HttpOnly, SameSite=Strict).

A valid token is reused until it expires rather than rotated, so two searches from the
same browser get the same page bytes for the same answer.
"""

import hashlib
import hmac
import secrets
import time

COOKIE = "sv_csrf"
FIELD = "csrf_token"
MAX_AGE = 2 * 60 * 60


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, f"csrf:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret: bytes, now: float | None = None) -> str:
    payload = f"{secrets.token_urlsafe(16)}.{int(now if now is not None else time.time())}"
    return f"{payload}.{_sign(secret, payload)}"


def is_valid(secret: bytes, token: str | None, now: float | None = None) -> bool:
    if not token or token.count(".") != 2:
        return False
    nonce, issued, signature = token.split(".")
    if not issued.isdigit() or not hmac.compare_digest(
        _sign(secret, f"{nonce}.{issued}"), signature
    ):
        return False
    age = (now if now is not None else time.time()) - int(issued)
    return 0 <= age <= MAX_AGE


def cookie_header(token: str, secure: bool) -> str:
    flags = f"Max-Age={MAX_AGE}; Path=/; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={token}; {flags}" + ("; Secure" if secure else "")
