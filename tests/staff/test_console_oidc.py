"""Staff sign-in through an OpenID Connect provider: a local provider on loopback (real
HTTP: discovery, authorize, token with PKCE, JWKS) signs ID tokens; the console matches
the account by subject. A token from another key, for another client, with another nonce,
or for nobody known, and a callback without its state, each get nobody in."""

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import Engine, select

from safevine.actions import accounts
from safevine.actions.actor import Actor
from safevine.contact_vault import ContactVault
from safevine.store.schema import audit_log
from safevine.web.server import background_server, free_port
from safevine.web.staff_app import create_staff_app
from tests.canaries import plant
from tests.web.conftest import SECRET, settings_for

CLIENT_ID, CLIENT_SECRET = "safevine-staff", "provider-secret-for-tests"


@dataclass
class Provider:
    issuer: str
    subject: str = "agency|ana"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    signing_key: RSAKey | None = None  # another key, to forge with
    audience: str = CLIENT_ID
    nonce: str | None = None  # a nonce other than the one asked for
    codes: dict[str, dict[str, str]] = field(default_factory=dict)


def _provider_app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, str]:
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
        }

    @app.get("/authorize")
    def authorize(request: Request) -> RedirectResponse:
        asked = dict(request.query_params)
        assert asked["client_id"] == CLIENT_ID and asked["code_challenge_method"] == "S256"
        code = f"code-{len(provider.codes)}"
        provider.codes[code] = asked
        back = urlencode({"code": code, "state": asked["state"]})
        return RedirectResponse(f"{asked['redirect_uri']}?{back}", status_code=302)

    @app.post("/token")
    def token(
        code: str = Form(),
        code_verifier: str = Form(),
        client_id: str = Form(),
        client_secret: str = Form(),
    ) -> JSONResponse:
        asked = provider.codes.pop(code, None)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
        if (
            asked is None
            or (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET)
            or challenge.rstrip(b"=").decode() != asked["code_challenge"]
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": provider.issuer,
            "aud": provider.audience,
            "sub": provider.subject,
            "iat": now,
            "exp": now + 300,
            "nonce": provider.nonce or asked["nonce"],
        }
        signed = jwt.encode(
            {"alg": "RS256", "kid": "k1"}, claims, provider.signing_key or provider.key
        )
        return JSONResponse({"id_token": signed, "access_token": "x", "token_type": "Bearer"})

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return {"keys": [provider.key.as_dict(private=False)]}

    return app


@dataclass
class Agency:
    staff: str
    provider: Provider
    engine: Engine


@pytest.fixture
def agency(engine: Engine) -> Iterator[Agency]:
    plant(engine)
    with engine.begin() as c:
        accounts.create(
            c,
            ContactVault(SECRET),
            Actor("cli:test"),
            "ana",
            ["screener"],
            None,
            datetime.now(UTC),
            oidc_subject="agency|ana",
        )
    port = free_port()
    provider = Provider(f"http://127.0.0.1:{port}")
    staff_port = free_port()
    settings = settings_for(
        engine,
        staff_base_url=f"http://127.0.0.1:{staff_port}",
        staff_oidc_issuer=provider.issuer,
        staff_oidc_client_id=CLIENT_ID,
        staff_oidc_client_secret=CLIENT_SECRET,
    )
    app = create_staff_app(settings)
    with (
        background_server(_provider_app(provider), port=port),
        background_server(app, port=staff_port) as base,
    ):
        yield Agency(base, provider, engine)
    app.state.staff.records_engine.dispose()


def _through(agency: Agency, state: str | None = None) -> httpx.Response:
    """Follow the sign-in as a browser would, up to the answer to the callback."""
    with httpx.Client(timeout=30) as browser:
        login = browser.get(f"{agency.staff}/login")
        assert "identity provider" in login.text
        to_provider = browser.get(f"{agency.staff}/login/oidc")
        assert to_provider.status_code == 303
        back = browser.get(to_provider.headers["location"])
        callback = back.headers["location"]
        if state is not None:
            query = parse_qs(urlparse(callback).query)
            callback = (
                callback.split("?")[0] + "?" + urlencode({"code": query["code"][0], "state": state})
            )
        answer = browser.get(callback)
        if answer.status_code == 303:
            home = browser.get(f"{agency.staff}/")
            assert home.status_code == 200 and "<h1>Dashboard</h1>" in home.text
        return answer


def test_an_account_signs_in_through_the_provider(agency: Agency) -> None:
    answer = _through(agency)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    with agency.engine.connect() as c:
        actions = [tuple(r) for r in c.execute(select(audit_log.c.actor, audit_log.c.action))]
    assert ("ana", "login") in actions


@pytest.mark.parametrize("forgery", ["other key", "other client", "other nonce", "nobody"])
def test_a_token_that_cannot_be_trusted_lets_nobody_in(agency: Agency, forgery: str) -> None:
    if forgery == "other key":
        agency.provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    elif forgery == "other client":
        agency.provider.audience = "someone-else"
    elif forgery == "other nonce":
        agency.provider.nonce = "not-the-one-asked-for"
    else:
        agency.provider.subject = "agency|nobody"
    answer = _through(agency)
    assert answer.status_code == 401 and "did not work" in answer.text
    assert "sv_staff=" not in answer.headers.get("set-cookie", "")


def test_a_callback_without_its_state_is_refused(agency: Agency) -> None:
    answer = _through(agency, state="made-up")
    assert answer.status_code == 403 and "expired" in answer.text
