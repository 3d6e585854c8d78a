"""Signing in through the agency's OpenID Connect provider (authorization code flow with
PKCE): the account is matched by the ID token's subject, and the second factor is the
provider's. Only when SAFEVINE_STAFF_OIDC_ISSUER is set.

The state, nonce and PKCE verifier wait in a short-lived cookie, signed with the app's
key, so nothing is kept on the server for a sign-in that never comes back. That cookie is
SameSite=Lax: the provider's redirect back is a top-level navigation from another site.
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from safevine.actions import accounts
from safevine.config import Settings
from safevine.domain.errors import RefusedError
from safevine.web.staff.console_login import client_of, login_page
from safevine.web.staff.console_session import COOKIE, secure_cookies
from safevine.web.staff.state import StaffState

router = APIRouter(include_in_schema=False)
STATE_COOKIE = "sv_staff_oidc"
CALLBACK = "/login/oidc/callback"
TIMEOUT = httpx.Timeout(10.0)


class ProviderError(Exception):
    """The provider could not be used or answered something that cannot be trusted."""


def _discover(settings: Settings) -> dict[str, Any]:
    issuer = settings.staff_oidc_issuer.rstrip("/")
    answer = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
    answer.raise_for_status()
    config: dict[str, Any] = answer.json()
    if config.get("issuer", "").rstrip("/") != issuer:
        raise ProviderError("the provider names another issuer")
    return config


def _mac(settings: Settings, value: str) -> str:
    return hmac.new(settings.secret_key, value.encode(), hashlib.sha256).hexdigest()


def _redirect_uri(settings: Settings) -> str:
    return settings.staff_base_url + CALLBACK


@router.get("/login/oidc")
def start(request: Request) -> Response:
    settings = StaffState.of(request).settings
    if not settings.staff_oidc_issuer:
        return login_page(request, "Signing in through a provider is not set up here.", 404)
    try:
        config = _discover(settings)
    except (httpx.HTTPError, ValueError, ProviderError):
        return login_page(request, "The sign-in provider cannot be reached. Try again.", 502)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.staff_oidc_client_id,
            "redirect_uri": _redirect_uri(settings),
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(f"{config['authorization_endpoint']}?{query}", status_code=303)
    value = f"{state}.{nonce}.{verifier}"
    response.set_cookie(
        STATE_COOKIE,
        f"{value}.{_mac(settings, value)}",
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/login/oidc",
    )
    return response


def _waiting(request: Request, settings: Settings) -> tuple[str, str, str] | None:
    raw = request.cookies.get(STATE_COOKIE, "")
    parts = raw.split(".")
    if len(parts) != 4:
        return None
    value = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3], _mac(settings, value)):
        return None
    return parts[0], parts[1], parts[2]


def _subject(settings: Settings, code: str, nonce: str, verifier: str) -> str:
    """The subject of the ID token the provider gives for `code`, once its signature,
    issuer, audience, expiry and nonce hold."""
    config = _discover(settings)
    answer = httpx.post(
        config["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": _redirect_uri(settings),
            "client_id": settings.staff_oidc_client_id,
            "client_secret": settings.staff_oidc_client_secret,
            "code_verifier": verifier,
        },
        timeout=TIMEOUT,
    )
    if answer.status_code != 200:
        raise ProviderError(f"the provider refused the code ({answer.status_code})")
    id_token = answer.json().get("id_token")
    keys = httpx.get(config["jwks_uri"], timeout=TIMEOUT).json()
    try:
        token = jwt.decode(
            str(id_token), KeySet.import_key_set(keys), algorithms=["RS256", "ES256"]
        )
        JWTClaimsRegistry(
            iss={"essential": True, "value": config["issuer"]},
            aud={"essential": True, "value": settings.staff_oidc_client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError, TypeError) as error:
        raise ProviderError(f"the ID token cannot be trusted ({type(error).__name__})") from None
    return str(token.claims["sub"])


@router.get(CALLBACK)
def callback(request: Request) -> Response:
    state = StaffState.of(request)
    settings = state.settings
    waiting = _waiting(request, settings)
    given_state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    if (
        not settings.staff_oidc_issuer
        or waiting is None
        or not code
        or not hmac.compare_digest(waiting[0], given_state)
    ):
        return login_page(request, "This sign-in has expired. Please start again.", 403)
    try:
        subject = _subject(settings, code, waiting[1], waiting[2])
        _, token = accounts.sign_in_oidc(
            state.records_engine, subject, client_of(request), datetime.now(UTC)
        )
    except (httpx.HTTPError, ValueError, ProviderError, RefusedError):
        response = login_page(request, "Signing in through the provider did not work.", 401)
        response.delete_cookie(STATE_COOKIE, path="/login/oidc")
        return response
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request)
    )
    response.delete_cookie(STATE_COOKIE, path="/login/oidc")
    return response
