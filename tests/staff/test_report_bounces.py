"""Staff see bouncing addresses: the delivery report (the JSON API and the page, over the
staff service's HTTP) counts the active email registrations whose address bounces for good,
and those whose address bounced within the report's period; never an address or a person."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel, mask_address, normalise_address
from safevine.domain.retry_policy import next_delay
from safevine.store.public import receipts, registrations
from safevine.store.public.tables import notifications
from safevine.store.public.tables import registrations as registrations_table
from safevine.store.schema import persons
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.staff.conftest import Staff
from tests.web.conftest import SECRET

VAULT = ContactVault(SECRET)


def _register(engine: Engine, channel: Channel, address: str) -> tuple[int, str]:
    """An active registration for the public canary, made through the registration steps;
    its id and the key its code went out under."""
    canonical = normalise_address(channel, address)
    now = datetime.now(UTC)
    with engine.begin() as c:
        ref = c.execute(
            select(persons.c.public_ref).where(persons.c.a_number == PUBLIC.a_number)
        ).scalar_one()
        request = registrations.RegistrationRequest(
            person_ref=ref,
            channel=channel,
            address=canonical,
            address_hint=mask_address(channel, canonical),
            language="en",
            wording="standard",
            events=("released",),
            pin="2468" if channel == Channel.VOICE else None,
        )
        started = registrations.start(c, VAULT, request, now)
        code_row = c.execute(
            select(
                notifications.c.id,
                notifications.c.idempotency_key,
                notifications.c.secret_key_id,
                notifications.c.secret_ciphertext,
            ).order_by(notifications.c.id.desc())
        ).first()
        assert code_row is not None
        code = VAULT.decrypt(code_row.secret_key_id, code_row.secret_ciphertext, "code")
        confirmed = registrations.confirm(c, VAULT, started.pending_token, code, now)
        assert isinstance(confirmed, registrations.Confirmed)
        # The code went out (as a worker records it), so its mail can bounce.
        c.execute(
            update(notifications)
            .where(notifications.c.id == code_row.id)
            .values(state="sent", sent_at=now, attempts=1)
        )
        registration_id = c.execute(
            select(notifications.c.registration_id).where(notifications.c.id == code_row.id)
        ).scalar_one()
    return int(registration_id), str(code_row.idempotency_key)


def _hard_bounce(engine: Engine, key: str, days_ago: float = 0) -> None:
    """The relay's delivery status notification for the mail sent under `key`, applied as
    the bounce receiver applies it; then dated `days_ago`."""
    with engine.begin() as c:
        applied = receipts.apply_bounce(
            c, key, True, datetime.now(UTC), lambda n: next_delay(n, None)
        )
        assert applied == receipts.Applied.FAILED
        if days_ago:
            registration_id = c.execute(
                select(notifications.c.registration_id).where(
                    notifications.c.idempotency_key == key
                )
            ).scalar_one()
            c.execute(
                update(registrations_table)
                .where(registrations_table.c.id == registration_id)
                .values(bounced_at=datetime.now(UTC) - timedelta(days=days_ago))
            )


def _report(staff: Staff) -> tuple[dict[str, object], str]:
    answer = staff.client.get("/api/v1/staff/report", headers=staff.as_("report"))
    page = staff.client.get("/staff/report", headers=staff.as_("report"))
    assert answer.status_code == page.status_code == 200
    return answer.json(), page.text


def _cell(page: str, cell_id: str) -> str:
    found = re.search(rf'<td id="{cell_id}">([^<]*)</td>', page)
    assert found is not None, cell_id
    return found.group(1)


def test_the_report_counts_bouncing_addresses_and_names_none(staff: Staff) -> None:
    report, page = _report(staff)
    assert report["bounces"] == {"active_bouncing": 0, "bounced_in_period": 0, "period_days": 30}
    assert _cell(page, "bouncing-active") == _cell(page, "bounced-in-period") == "0"

    addresses = {
        "bounced_today": "ana.bounce@example.org",
        "bounced_long_ago": "old.bounce@example.org",
        "bounced_then_ended": "gone.bounce@example.org",
        "fine": "fine@example.org",
    }
    made = {name: _register(staff.engine, Channel.EMAIL, a) for name, a in addresses.items()}
    # A text message registration never bounces, and is never counted.
    _register(staff.engine, Channel.SMS, "+1 555 010 0177")
    _hard_bounce(staff.engine, made["bounced_today"][1])
    _hard_bounce(staff.engine, made["bounced_long_ago"][1], days_ago=40)  # before the period
    _hard_bounce(staff.engine, made["bounced_then_ended"][1], days_ago=2)
    with staff.engine.begin() as c:
        registrations.end_registration(
            c, made["bounced_then_ended"][0], registrations.BY_REGISTRANT, datetime.now(UTC)
        )

    report, page = _report(staff)
    # Active and bouncing: the one of today and the one of 40 days ago. Bounced within
    # the 30 days: today's, and the one since ended.
    assert report["bounces"] == {"active_bouncing": 2, "bounced_in_period": 2, "period_days": 30}
    assert _cell(page, "bouncing-active") == _cell(page, "bounced-in-period") == "2"
    assert "Email addresses bouncing" in page and "bounced in the last 30 days" in page

    # Nothing that identifies an address or a person, in the page or the JSON.
    with staff.engine.connect() as c:
        rows = c.execute(
            select(
                registrations_table.c.address_hint,
                registrations_table.c.address_index,
                registrations_table.c.person_ref,
            )
        ).all()
    shown = page + str(report)
    secret = [
        *addresses.values(),
        *(a.split("@")[0] for a in addresses.values()),
        "5550100177",
        *(v for row in rows for v in row),
        *(w for canary in [PUBLIC, *NON_PUBLIC] for w in canary.identifiers),
    ]
    assert [s for s in secret if s in shown] == []
