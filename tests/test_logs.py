"""The logs of a full run, at the most verbose level we ship, hold no contact, URL or person.

`safevine serve`, `safevine staff serve`, `safevine worker` and `safevine ingest` run as
real processes with SAFEVINE_LOG_LEVEL=debug against a real SMTP server and a provider
simulator over real HTTP; registrations on every channel are made and confirmed through
the public API, an event is delivered on each, an SMS STOP arrives, staff act through the
CLI and the staff service's API. Then everything the processes wrote to stderr is read.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from safevine.contact_vault import ContactVault
from safevine.store.public.tables import notifications, registrations
from safevine.web.public.sms_inbound import twilio_signature
from safevine.web.server import free_port
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.notify.servers import Provider, SmtpSink, provider_stub, smtp_sink
from tests.web.conftest import SECRET

SAFEVINE = Path(sys.executable).parent / "safevine"
TOKEN = "sms-provider-token"
EMAIL = "Ana.Logtest@Example.org"
SMS = "+1 (555) 010-7777"
VOICE = "555 010 8888"
# A case system's webhook, with what such URLs carry in their query strings.
HOOK_QUERY = "case=LOGCASE-7&token=qs-secret-123"


def _environment(engine: Engine, sink: SmtpSink, provider: Provider, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SAFEVINE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "SAFEVINE_SECRET_KEY": SECRET.decode(),
        "SAFEVINE_LOG_LEVEL": "debug",
        "SAFEVINE_RATE_LIMITS": "false",
        "SAFEVINE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SAFEVINE_SMTP_PORT": str(sink.port),
        "SAFEVINE_SMS_API_BASE": provider.base,
        "SAFEVINE_SMS_ACCOUNT_SID": "AC123",
        "SAFEVINE_SMS_AUTH_TOKEN": TOKEN,
        "SAFEVINE_SMS_FROM": "+15550001111",
        "SAFEVINE_WEBHOOK_ALLOW_PRIVATE": "true",
        "SAFEVINE_RETRY_BASE_SECONDS": "1",
        "SAFEVINE_WORKER_LEASE_SECONDS": "2",
    }


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(SAFEVINE), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr.decode(errors="replace")


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(SAFEVINE), *args], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stderr.decode(errors="replace")


def _wait(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _unsent(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(notifications.c.state).where(
                    notifications.c.state.in_(("queued", "retrying", "sending"))
                )
            ).scalars()
        )


def _codes(engine: Engine) -> dict[int, str]:
    """Each registration's latest code, as its owner reads it from the message."""
    vault = ContactVault(SECRET)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                notifications.c.registration_id,
                notifications.c.secret_key_id,
                notifications.c.secret_ciphertext,
            )
            .where(notifications.c.purpose == "confirmation")
            .order_by(notifications.c.id)
        ).all()
    return {r[0]: vault.decrypt(r[1], r[2], "code") for r in rows}


def test_no_contact_url_or_person_reaches_the_logs_of_a_full_run(
    engine: Engine, tmp_path: Path
) -> None:
    plant(engine)
    port, staff_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    logs: list[str] = []
    with smtp_sink() as sink, provider_stub() as provider:
        hook = f"{provider.base}/hook?{HOOK_QUERY}"
        env = _environment(engine, sink, provider, port)
        server = _start(env, "serve", "--port", str(port))
        staff = _start(env, "staff", "serve", "--port", str(staff_port))
        worker = _start(env, "worker")
        try:
            _wait(lambda: _answers(base), "the server")
            staff_base = f"http://127.0.0.1:{staff_port}"
            _wait(lambda: _answers(staff_base, "/openapi.json"), "the staff service")
            with httpx.Client(base_url=base, timeout=30) as client:
                _search_everyone(client)
                ref = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
                person_ref = ref[0]["reference"]
                pending = {
                    channel: client.post(
                        "/api/v1/registrations",
                        json={
                            "person": person_ref,
                            "channel": channel,
                            "address": address,
                            "language": "en",
                            **({"pin": "1357"} if channel == "voice" else {}),
                        },
                    ).json()["registration"]
                    for channel, address in (
                        ("email", EMAIL),
                        ("sms", SMS),
                        ("voice", VOICE),
                        ("webhook", hook),
                    )
                }
                _wait(lambda: not _unsent(engine), "the codes to be sent")
                assert len(sink.received) == 1 and len(provider.requests) == 3
                codes = list(_codes(engine).values())
                for token, code in zip(pending.values(), codes, strict=True):
                    confirmed = client.post(
                        "/api/v1/registrations/confirm", json={"registration": token, "code": code}
                    )
                    assert confirmed.status_code == 200, confirmed.text
                who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born)
                release = event("log-release", "released", days_ago(0.01), who, reason="parole")
                feed = tmp_path / "release.jsonl"
                feed.write_bytes(b"".join(jsonl(release)))
                logs.append(_run(env, "ingest", "events", str(feed)))
                _wait(lambda: not _unsent(engine), "the release to be sent")
                assert len(sink.received) == 2 and len(provider.requests) == 6
                _stop_by_sms(client, base, provider)
                with httpx.Client(base_url=staff_base, timeout=30) as staff_client:
                    _staff(env, staff_client, logs)
        finally:
            logs += [_stop(server), _stop(staff), _stop(worker)]
    _assert_clean("\n".join(logs), hook, provider)
    with engine.connect() as connection:
        ended = connection.execute(
            select(registrations.c.channel, registrations.c.end_reason).where(
                registrations.c.state == "ended"
            )
        ).all()
    # The STOP ended the texts to its number; the protection at the end, the rest.
    assert sorted(tuple(row) for row in ended) == [
        ("email", "record_unavailable"),
        ("sms", "sms_stop"),
        ("voice", "record_unavailable"),
        ("webhook", "record_unavailable"),
    ]


def _answers(base: str, path: str = "/") -> bool:
    try:
        return httpx.get(f"{base}{path}", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _search_everyone(client: httpx.Client) -> None:
    client.get("/")
    csrf = client.cookies.get("sv_csrf") or ""
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        for body in (canary.by_a_number(), canary.by_name()):
            client.post("/api/v1/search", json=body)
            client.post("/", data={**body, "csrf_token": csrf})
    # Input that fails validation, with identifiers in it.
    client.post("/api/v1/search", json={"a_number": f"x{PUBLIC.a_number}", "country_of_birth": 7})


def _stop_by_sms(client: httpx.Client, base: str, provider: Provider) -> None:
    form = {"From": "+15550107777", "Body": "STOP", "MessageSid": "SM9"}
    signature = twilio_signature(TOKEN, f"{base}/api/v1/sms/inbound", form)
    answer = client.post(
        "/api/v1/sms/inbound", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status_code == 200


def _staff(env: dict[str, str], client: httpx.Client, logs: list[str]) -> None:
    created = subprocess.run(
        [str(SAFEVINE), "token", "create", "--name", "logs", "--scope", "read"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    logs.append(created.stderr.decode(errors="replace"))
    token = created.stdout.decode().strip()
    looked = client.post(
        "/api/v1/staff/persons/lookup",
        json={"a_number": NON_PUBLIC[0].a_number},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert looked.status_code == 200, looked.text
    logs.append(_run(env, "person", "show", PUBLIC.a_number))
    logs.append(_run(env, "protect", PUBLIC.a_number, "--reason", "1367 protection"))


def _assert_clean(logged: str, hook: str, provider: Provider) -> None:
    # The run really was logged, at debug, by every process.
    assert '"route": "/api/v1/registrations"' in logged
    assert '"route": "/api/v1/staff/persons/lookup"' in logged
    assert "batch: claimed=" in logged
    secrets = [
        EMAIL,
        EMAIL.lower(),
        "logtest",
        "5550107777",
        "555) 010-7777",
        "5550108888",
        "010 8888",
        hook,
        HOOK_QUERY,
        "LOGCASE-7",
        "qs-secret-123",
        "/hook",
        provider.base,
        "/2010-04-01/Accounts",
        TOKEN,
    ]
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        secrets += canary.identifiers
    leaked = [secret for secret in secrets if secret.lower() in logged.lower()]
    assert not leaked, (leaked, logged[-3000:])
