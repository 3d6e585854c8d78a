"""Registration through the live app: double opt-in, idempotence, bounded tries, ending,
and the same answers whoever the person is."""

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from safevine.config import Settings
from safevine.domain.contact_address import Channel
from safevine.i18n import LANGUAGES
from safevine.notify import webhook_destination
from safevine.store.public import registrations as registration_store
from safevine.store.public.tables import notifications, registrations
from safevine.web.public.registration_form import ADDRESS_PROBLEM
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.resolvers import PUBLIC_V4, PUBLIC_V6, resolve_names
from tests.notify.test_delivery import release


@pytest.fixture
def api(delivery: Delivery) -> Iterator[httpx.Client]:
    app = create_public_app(delivery.settings)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client
    app.state.safevine.public_engine.dispose()


def body(
    delivery: Delivery, a_number: str = PUBLIC.a_number, **changes: object
) -> dict[str, object]:
    values: dict[str, object] = {
        "person": delivery.ref(a_number),
        "channel": "email",
        "address": "Ana@Example.org",
        "language": "en",
    }
    values.update(changes)
    return values


def code_from_inbox(delivery: Delivery) -> str:
    delivery.dispatch()
    message = delivery.sink.received[-1].text
    # The six digits, in whichever language the message is written.
    found = re.search(r"(?<!\d)\d{6}(?!\d)", message)
    assert found is not None, message
    return found.group(0)


def test_double_opt_in_then_see_and_end(delivery: Delivery, api: httpx.Client) -> None:
    started = api.post("/api/v1/registrations", json=body(delivery))
    assert started.status_code == 202
    assert started.json()["status"] == "pending_confirmation"
    code = code_from_inbox(delivery)
    assert PUBLIC.given not in delivery.sink.received[-1].text
    confirmed = api.post(
        "/api/v1/registrations/confirm",
        json={"registration": started.json()["registration"], "code": code},
    )
    assert confirmed.status_code == 200
    token = confirmed.json()["manage_token"]
    assert confirmed.json()["manage_url"] == f"http://127.0.0.1:8000/m/{token}"
    shown = api.get(f"/api/v1/registrations/{token}").json()
    assert (shown["status"], shown["address"], shown["channel"]) == (
        "active",
        "a***@example.org",
        "email",
    )
    assert len(shown["events"]) == 8 and shown["wording"] == "standard"
    assert api.delete(f"/api/v1/registrations/{token}").status_code == 204
    ended = api.get(f"/api/v1/registrations/{token}").json()
    assert (ended["status"], ended["ended_reason"]) == ("ended", "You ended this registration.")
    assert api.get("/api/v1/registrations/not-a-token").status_code == 404


def test_the_address_is_stored_only_encrypted(delivery: Delivery, api: httpx.Client) -> None:
    api.post("/api/v1/registrations", json=body(delivery, address="secret.person@example.org"))
    with delivery.engine.connect() as connection:
        row = connection.execute(select(registrations)).one()
    stored = " ".join(str(v) for v in row._mapping.values())
    assert "secret.person" not in stored
    assert b"secret.person" not in row.address_ciphertext


def _open(delivery: Delivery) -> list[tuple[str, str | None]]:
    with delivery.engine.connect() as connection:
        return [
            tuple(r)  # type: ignore[misc]
            for r in connection.execute(
                select(registrations.c.state, registrations.c.end_reason).order_by(
                    registrations.c.id
                )
            )
        ]


def test_one_registration_per_address_and_person_is_settled_at_confirmation(
    delivery: Delivery, api: httpx.Client
) -> None:
    first = api.post("/api/v1/registrations", json=body(delivery))
    old_code = code_from_inbox(delivery)
    second = api.post("/api/v1/registrations", json=body(delivery, address="ana@example.org"))
    assert first.status_code == second.status_code == 202
    code = code_from_inbox(delivery)
    confirmed = api.post(
        "/api/v1/registrations/confirm",
        json={"registration": second.json()["registration"], "code": code},
    )
    assert confirmed.status_code == 200
    # Confirming the newer one ended the older: its code no longer opens anything.
    stale = api.post(
        "/api/v1/registrations/confirm",
        json={"registration": first.json()["registration"], "code": old_code},
    )
    assert stale.status_code == 422
    assert _open(delivery) == [("ended", "replaced"), ("active", None)]


def test_registering_again_and_confirming_replaces_the_settings(
    delivery: Delivery, api: httpx.Client
) -> None:
    first = api.post("/api/v1/registrations", json=body(delivery)).json()
    old = api.post(
        "/api/v1/registrations/confirm",
        json={"registration": first["registration"], "code": code_from_inbox(delivery)},
    ).json()["manage_token"]
    # A release is queued for the registration as it stands, not yet sent.
    release(delivery.engine)
    again = api.post(
        "/api/v1/registrations",
        json=body(delivery, language="es", wording="discreet", events=["released"]),
    ).json()
    # Nothing is sent yet (that would deliver the release by the old settings): the code
    # is read from the outbox, as its owner would read it from the message.
    with delivery.engine.connect() as connection:
        code = delivery.latest_code(connection)
    new = api.post(
        "/api/v1/registrations/confirm", json={"registration": again["registration"], "code": code}
    ).json()["manage_token"]
    shown_old = api.get(f"/api/v1/registrations/{old}").json()
    assert shown_old["status"] == "ended"
    assert shown_old["ended_reason"].startswith("Replaced by a newer registration")
    shown_new = api.get(f"/api/v1/registrations/{new}").json()
    assert (shown_new["status"], shown_new["language"], shown_new["wording"]) == (
        "active",
        "es",
        "discreet",
    )
    assert shown_new["events"] == ["released"]
    delivery.sink.received.clear()
    delivery.dispatch()
    # The new code and the release, each sent once, the release by the new settings
    # (discreet, in Spanish), to the same address.
    assert len(delivery.sink.received) == 2
    releases = [m for m in delivery.sink.received if code not in m.text]
    assert len(releases) == 1 and releases[0].recipients == ["ana@example.org"]
    assert PUBLIC.family not in releases[0].text and "registro" in releases[0].text
    with delivery.engine.connect() as connection:
        states = connection.execute(
            select(notifications.c.purpose, notifications.c.state).order_by(notifications.c.id)
        ).all()
    assert [tuple(s) for s in states].count(("event", "sent")) == 1
    assert all(state == "sent" for _, state in states)


def test_wrong_codes_are_bounded_and_codes_expire(delivery: Delivery, api: httpx.Client) -> None:
    started = api.post("/api/v1/registrations", json=body(delivery)).json()
    code = code_from_inbox(delivery)
    wrong = "000000" if code != "000000" else "111111"
    answers = [
        api.post(
            "/api/v1/registrations/confirm",
            json={"registration": started["registration"], "code": wrong},
        )
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [422] * 5
    assert "Too many wrong codes" in answers[-1].json()["errors"][0]["message"]
    late = api.post(
        "/api/v1/registrations/confirm",
        json={"registration": started["registration"], "code": code},
    )
    assert late.status_code == 422  # even the right code, after too many tries

    other = api.post("/api/v1/registrations", json=body(delivery, address="b@example.org")).json()
    code = code_from_inbox(delivery)
    with delivery.engine.begin() as connection:
        connection.execute(
            update(registrations).values(code_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    expired = api.post(
        "/api/v1/registrations/confirm", json={"registration": other["registration"], "code": code}
    )
    assert "expired" in expired.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"channel": "fax"}, ["channel"]),
        ({"address": "not an email"}, ["address"]),
        ({"channel": "sms", "address": "12"}, ["address"]),
        ({"channel": "webhook", "address": "ftp://x"}, ["address"]),
        ({"language": "tlh"}, ["language"]),  # Klingon: no catalog
        ({"wording": "loud"}, ["wording"]),
        ({"events": ["released", "partied"]}, ["events"]),
        ({"person": "x"}, ["person"]),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, ["quiet_hours"]),
    ],
)
def test_malformed_registrations_get_field_messages(
    delivery: Delivery, api: httpx.Client, changes: dict[str, object], fields: list[str]
) -> None:
    response = api.post(
        "/api/v1/registrations", json=body(delivery, **changes), headers={"Accept-Language": "es"}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == fields
    assert all(e["message"] for e in response.json()["errors"])


@pytest.mark.parametrize("canary", NON_PUBLIC, ids=lambda c: c.kind)
def test_a_non_public_person_is_registered_for_exactly_like_a_public_one(
    delivery: Delivery, api: httpx.Client, canary: object
) -> None:
    _registered_alike(delivery, api, canary, "en")


def test_in_every_language_a_non_public_person_is_registered_for_like_a_public_one(
    delivery: Delivery, api: httpx.Client
) -> None:
    for n, language in enumerate(LANGUAGES):
        _registered_alike(delivery, api, NON_PUBLIC[n % len(NON_PUBLIC)], language, f"{n}.")


def _registered_alike(
    delivery: Delivery, api: httpx.Client, canary: object, language: str, tag: str = ""
) -> None:
    def flow(a_number: str, address: str) -> tuple[list[object], str]:
        started = api.post(
            "/api/v1/registrations",
            json=body(delivery, a_number, address=address, language=language),
            headers={"Accept-Language": language},
        )
        code = code_from_inbox(delivery)
        message = delivery.sink.received[-1]
        confirmed = api.post(
            "/api/v1/registrations/confirm",
            json={"registration": started.json()["registration"], "code": code},
        )
        shape = [
            started.status_code,
            sorted(started.json()),
            confirmed.status_code,
            sorted(confirmed.json()),
            message.message["Subject"],
            message.message["From"],
            message.text.replace(code, "CODE"),
        ]
        return shape, confirmed.json()["manage_token"]

    public_shape, _ = flow(PUBLIC.a_number, f"{tag}one@example.org")
    hidden_shape, token = flow(canary.a_number, f"{tag}two@example.org")  # type: ignore[attr-defined]
    assert hidden_shape == public_shape
    shown = api.get(f"/api/v1/registrations/{token}").json()
    assert shown["status"] == "ended"
    if language == "en":
        assert shown["ended_reason"] == "This record is no longer available."
    everything = "".join(r.text for r in delivery.sink.received) + str(shown)
    for identifier in canary.identifiers:  # type: ignore[attr-defined]
        assert identifier not in everything


def test_an_unknown_reference_answers_the_same_too(delivery: Delivery, api: httpx.Client) -> None:
    known = api.post("/api/v1/registrations", json=body(delivery))
    unknown = api.post(
        "/api/v1/registrations",
        json=body(delivery, person="AAAAAAAAAAAAAAAAAAAAAA", address="x@example.org"),
    )
    assert (unknown.status_code, sorted(unknown.json())) == (
        known.status_code,
        sorted(known.json()),
    )


def test_codes_cannot_flood_one_address(delivery: Delivery) -> None:
    from safevine.config import Settings

    settings = Settings(
        **{
            **delivery.settings.__dict__,
            "rate_limits_enabled": True,
            "registration_limit_address": "2/hour",
            "registration_limit_client": "50/hour",
        }
    )
    app = create_public_app(settings)
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        statuses = [
            client.post("/api/v1/registrations", json=body(delivery)).status_code for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        other = client.post("/api/v1/registrations", json=body(delivery, address="z@example.org"))
        assert other.status_code == 202
    app.state.safevine.public_engine.dispose()


def _signed(token: str, url: str, form: dict[str, str]) -> str:
    payload = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    return base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


@pytest.mark.parametrize("word", ["STOP", "parar", "Stop please"])
def test_an_sms_stop_reply_ends_the_registration_at_once(delivery: Delivery, word: str) -> None:
    from safevine.config import Settings

    delivery.register(
        delivery.ref(PUBLIC.a_number),
        "+1 555 010 0100",
        channel=__import__("safevine.domain.contact_address", fromlist=["Channel"]).Channel.SMS,
    )
    settings = Settings(**{**delivery.settings.__dict__, "sms_auth_token": "tok"})
    app = create_public_app(settings)
    form = {"From": "+15550100100", "Body": word, "MessageSid": "SM1"}
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        forged = client.post("/api/v1/sms/inbound", data=form, headers={"X-Twilio-Signature": "x"})
        assert forged.status_code == 403
        url = "http://127.0.0.1:8000/api/v1/sms/inbound"
        answer = client.post(
            "/api/v1/sms/inbound",
            data=form,
            headers={"X-Twilio-Signature": _signed("tok", url, form)},
        )
    app.state.safevine.public_engine.dispose()
    assert answer.status_code == 200 and "<Message>" not in answer.text
    with delivery.engine.connect() as connection:
        row = connection.execute(select(registrations.c.state, registrations.c.end_reason)).one()
    assert tuple(row) == ("ended", "sms_stop")


WEBHOOK_PROBLEM = [{"field": "address", "message": ADDRESS_PROBLEM[Channel.WEBHOOK]}]


@pytest.fixture
def strict_api(delivery: Delivery) -> Iterator[httpx.Client]:
    """The app as deployed: webhooks only over https, and only to public addresses."""
    settings = Settings(**{**delivery.settings.__dict__, "webhook_allow_private": False})
    app = create_public_app(settings)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client
    app.state.safevine.public_engine.dispose()


def _stored(delivery: Delivery) -> tuple[int, int]:
    with delivery.engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(registrations)).scalar_one(),
            connection.execute(select(func.count()).select_from(notifications)).scalar_one(),
        )


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/hook",
        "https://0x7f.1/hook",
        "https://127.1/hook",
        "https://0177.0.0.1/hook",
        "https://127.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::1]/hook",
        "https://localhost/hook",  # resolved by the system, to loopback
        "https://private.example.test/hook",  # resolves to 10.0.0.7
        "https://mixed.example.test/hook",  # one public address, one link-local
        "https://nothing.invalid/hook",  # does not resolve at all
        "http://public.example.test/hook",  # public, but not https
    ],
)
def test_a_webhook_that_may_not_be_reached_is_an_address_problem(
    delivery: Delivery, strict_api: httpx.Client, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    resolve_names(
        monkeypatch,
        {
            "private.example.test": ["10.0.0.7"],
            "mixed.example.test": [PUBLIC_V4, "169.254.169.254"],
            "public.example.test": [PUBLIC_V4],
        },
    )
    answers = [
        strict_api.post(
            "/api/v1/registrations",
            json=body(delivery, a_number, channel="webhook", address=url),
        )
        for a_number in (PUBLIC.a_number, NON_PUBLIC[0].a_number)
    ]
    # The same answer as for any malformed address, whoever the person is; nothing kept.
    assert [(a.status_code, a.json()) for a in answers] == [(422, {"errors": WEBHOOK_PROBLEM})] * 2
    assert _stored(delivery) == (0, 0)


def test_a_webhook_on_a_public_address_is_accepted(
    delivery: Delivery, strict_api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up = resolve_names(monkeypatch, {"public.example.test": [PUBLIC_V4, PUBLIC_V6]})
    started = strict_api.post(
        "/api/v1/registrations",
        json=body(delivery, channel="webhook", address="https://public.example.test/hook"),
    )
    assert started.status_code == 202
    assert looked_up == ["public.example.test"]
    assert _stored(delivery) == (1, 1)


def test_a_webhook_on_loopback_is_accepted_where_private_addresses_are_allowed(
    delivery: Delivery, api: httpx.Client
) -> None:
    # As the tests and the demo run: the receiver on 127.0.0.1, over http.
    started = api.post(
        "/api/v1/registrations",
        json=body(delivery, channel="webhook", address=f"{delivery.provider.base}/hook"),
    )
    assert started.status_code == 202


def test_a_slow_lookup_does_not_hold_up_other_requests(
    delivery: Delivery, strict_api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()

    def slow(host: str, port: int) -> list[str]:
        released.wait(10)
        return [PUBLIC_V4]

    monkeypatch.setattr(webhook_destination, "resolver", slow)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            strict_api.post,
            "/api/v1/registrations",
            json=body(delivery, channel="webhook", address="https://slow.example.test/hook"),
        )
        try:
            # The registration waits on its lookup; the server answers others meanwhile.
            assert strict_api.get("/api/v1/registrations/not-a-token").status_code == 404
            assert not pending.done()
        finally:
            released.set()
        assert pending.result(timeout=30).status_code == 202


def test_two_confirmations_at_once_leave_one_registration(postgres_delivery: Delivery) -> None:
    delivery = postgres_delivery
    request = registration_store.RegistrationRequest(
        person_ref=delivery.ref(PUBLIC.a_number),
        channel=Channel.EMAIL,
        address="ana@example.org",
        address_hint="a***@example.org",
        language="en",
        wording="standard",
        events=("released",),
    )
    pending = []
    for _ in range(2):
        with delivery.public.begin() as connection:
            now = datetime.now(UTC)
            started = registration_store.start(connection, delivery.vault, request, now)
            pending.append((started.pending_token, delivery.latest_code(connection)))
    barrier = threading.Barrier(2)

    def confirm(token: str, code: str) -> object:
        barrier.wait()
        with delivery.public.begin() as connection:
            now = datetime.now(UTC)
            return registration_store.confirm(connection, delivery.vault, token, code, now)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: confirm(*p), pending))
    # They take turns: the first to lock confirms and ends the other, whose code then
    # opens nothing. No deadlock, no error, no second active registration.
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["ConfirmationRefused", "Confirmed"]
    assert sorted(_open(delivery)) == [("active", None), ("ended", "replaced")]
