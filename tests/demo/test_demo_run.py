"""`make run` end to end: the demo process serves the site, sends mail to its own inbox,
and its simulator makes a real notification arrive for a newcomer who registers."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from safevine.web.server import free_port
from tests.loops import wait_until

SAFEVINE = Path(sys.executable).parent / "safevine"


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, seen: Callable[[], str] | None = None
) -> Any:
    return wait_until(what, predicate, timeout, every=0.25, seen=seen)


def test_a_newcomer_registers_and_a_notification_arrives(tmp_path: Path) -> None:
    port, mail_port, staff_port = free_port(), free_port(), free_port()
    database, log = tmp_path / "demo.db", tmp_path / "demo.log"
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": f"sqlite:///{database}",
        "SAFEVINE_DEMO": "true",
        "SAFEVINE_SECRET_KEY": "k" * 40,
        "COLUMNS": "200",
    }
    output = log.open("w")
    demo = subprocess.Popen(
        [
            str(SAFEVINE),
            "demo",
            "--people",
            "80",
            "--serve",
            "--port",
            str(port),
            "--mail-port",
            str(mail_port),
            "--staff-port",
            str(staff_port),
            "--every",
            "1",
        ],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base), 120, "the demo site", lambda: log.read_text()[-4000:])
        client = httpx.Client(base_url=base, timeout=30)
        assert client.get("/demo/inbox").status_code == 200
        listed = _first_public(database)
        found = client.post("/api/v1/search", json=listed).json()["results"]
        assert len(found) == 1
        pending = {
            channel: client.post(
                "/api/v1/registrations",
                json={
                    "person": found[0]["reference"],
                    "channel": channel,
                    "address": address,
                    "language": "en",
                    **({"pin": "1357"} if channel == "voice" else {}),
                },
            ).json()["registration"]
            for channel, address in (
                ("email", "newcomer@example.org"),
                ("sms", "+1 555 010 7777"),
                ("voice", "+1 555 010 8888"),
            )
        }
        # Each code arrives on the inbox page: by email, as a text and spoken in a call.
        codes = wait_for(
            lambda: _codes(client.get("/demo/inbox").text),
            30,
            "the codes",
            lambda: _what_happened(client.get("/demo/inbox").text, database, log),
        )
        manage = {}
        for channel, token in pending.items():
            confirmed = client.post(
                "/api/v1/registrations/confirm",
                json={"registration": token, "code": codes[channel]},
            )
            assert confirmed.status_code == 200, (channel, confirmed.text)
            manage[channel] = confirmed.json()["manage_token"]
        name = found[0]["name"]
        # One message naming the person on each channel (other mail, such as an operations
        # alert from the demo's silent facility, may arrive in between).
        wait_for(
            lambda: _on_every_channel(client.get("/demo/inbox").text, name),
            60,
            "a notification on every channel",
            lambda: _what_happened(client.get("/demo/inbox").text, database, log),
        )
        # The provider asks for its account's credentials, as the real one does.
        provider = f"{base}/demo/provider/2010-04-01/Accounts/ACdemo/Messages.json"
        assert httpx.post(provider, data={"To": "+15550107777", "Body": "x"}).status_code == 401
        # Reply STOP from the phone: the registration by text ends, the others go on.
        page = client.get("/demo/inbox").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        replied = client.post(
            "/demo/phone/reply", data={"csrf_token": csrf, "From": "+15550107777", "lang": "en"}
        )
        assert replied.status_code == 303
        ended = client.get(f"/api/v1/registrations/{manage['sms']}").json()
        assert (ended["status"], ended["ended_reason"]) == ("ended", "Ended by a STOP reply.")
        still = client.get(f"/api/v1/registrations/{manage['email']}").json()
        assert still["status"] == "active"
        _staff_sign_in(f"http://127.0.0.1:{staff_port}")
        _the_silent_facility_shows_its_delay(client, database, log)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
        output.close()


def _staff_sign_in(staff: str) -> None:
    """The demo screener signs in with the password and code the demo shows, and finds
    people waiting to be screened and the batch held for review."""
    hidden = re.compile(r'name="csrf_token" value="([^"]+)"')
    with httpx.Client(base_url=staff, timeout=30, follow_redirects=True) as client:
        codes = client.get("/demo/authenticator").text
        row = re.search(
            r"demo-screener</td><td><code>([^<]+)</code></td><td><strong[^>]*>(\d{6})", codes
        )
        assert row, codes
        password, code = row.group(1), row.group(2)
        token = hidden.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
        asked = client.post(
            "/login", data={"name": "demo-screener", "password": password, "csrf_token": token}
        )
        assert asked.url.path == "/login/code", (asked.status_code, asked.text)
        token = hidden.search(asked.text).group(1)  # type: ignore[union-attr]
        board = client.post("/login/code", data={"code": code, "csrf_token": token})
        assert board.status_code == 200 and "<h1>Dashboard</h1>" in board.text, board.text
        waiting = re.search(r'id="t-screening">[^<]*</h2>\s*<p class="figure">(\d+)', board.text)
        held = re.search(r'id="t-holds">[^<]*</h2>\s*<p class="figure">(\d+)', board.text)
        assert waiting and int(waiting.group(1)) > 0
        assert held and int(held.group(1)) == 1


def _what_happened(page: str, database: Path, log: Path) -> str:
    """What a failed wait saw: the inbox's headings, the registrations, notifications,
    latest events and operations messages in the demo's database, and the end of the
    demo's output."""
    import sqlite3

    with sqlite3.connect(database) as db:
        tables = {
            "registrations": "SELECT id, channel, state, events FROM registrations",
            "notifications": "SELECT registration_id, purpose, state, attempts, "
            "deferred_reason, last_error, next_attempt_at FROM notifications",
            "events": "SELECT id, kind, person_id, received_at FROM custody_events "
            "ORDER BY id DESC LIMIT 10",
            "operations messages": "SELECT kind, subject, state, attempts, next_attempt_at, "
            "created_at FROM operations_messages",
        }
        rows = [f"{name}: {db.execute(sql).fetchall()}" for name, sql in tables.items()]
    headings = [item.split("</h2>", 1)[0][:120] for item in _items(page)]
    return "\n".join([f"inbox: {headings}", *rows, log.read_text()[-4000:]])


def _on_every_channel(page: str, name: str) -> bool:
    headings = ("<h2>Email:", "<h2>Text message</h2>", "<h2>Phone call</h2>")
    items = _items(page)
    return all(any(h in item and name in item for item in items) for h in headings)


def _items(page: str) -> list[str]:
    """The inbox page's items, newest first."""
    return page.split('<li class="result">')[1:]


def _codes(page: str) -> dict[str, str] | None:
    """The confirmation code each channel delivered, once all three have arrived."""
    codes: dict[str, str] = {}
    for item in _items(page):
        if email := re.search(r"confirmation code is (\d{6})", item):
            codes.setdefault("email" if "Email" in item else "voice", email.group(1))
        if text := re.search(r"Your code is (\d{6})", item):
            codes.setdefault("sms", text.group(1))
        if call := re.search(r"code is ((?:\d, ){5}\d)", item):
            codes.setdefault("voice", call.group(1).replace(", ", ""))
    return codes if len(codes) == 3 else None


def _the_silent_facility_shows_its_delay(client: httpx.Client, database: Path, log: Path) -> None:
    """As if five minutes had passed since the demo facility that stops sending last
    sent anything: the staff service's clock finds it down, its people's results say so,
    /delays lists it and the operations alert reaches the demo inbox."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    then = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(database) as db:
        facility_id, name = db.execute(
            "SELECT id, name FROM facilities WHERE down_after_minutes = 5"
        ).fetchone()
        db.execute(
            "UPDATE custody_events SET received_at = ? WHERE facility_id = ?", (then, facility_id)
        )
        held = db.execute(
            "SELECT a_number, country_of_birth FROM public_persons "
            "WHERE custody_state = 'in_custody' AND facility_name = ? LIMIT 1",
            (name,),
        ).fetchone()
    wait_for(
        lambda: name in client.get("/delays").text,
        120,
        "the silent facility on /delays",
        lambda: _what_happened(client.get("/demo/inbox").text, database, log),
    )
    [result] = client.post(
        "/api/v1/search", json={"a_number": held[0], "country_of_birth": held[1]}
    ).json()["results"]
    assert result["information_delayed"]["state"] == "down"
    # The staff service's clock evaluates every 30 s; the sender looks every 5 s.
    wait_for(
        lambda: "safevine feed health: 1 DOWN" in client.get("/demo/inbox").text,
        60,
        "the operations alert in the demo inbox",
        lambda: _what_happened(client.get("/demo/inbox").text, database, log),
    )


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _first_public(database: Path) -> dict[str, str]:
    import sqlite3

    row = (
        sqlite3.connect(database)
        .execute(
            "SELECT a_number, country_of_birth FROM public_persons "
            "WHERE custody_state = 'in_custody' AND facility_name NOT IN "
            "(SELECT name FROM facilities WHERE down_after_minutes = 5) "
            "ORDER BY a_number LIMIT 1"
        )
        .fetchone()
    )
    return {"a_number": row[0], "country_of_birth": row[1]}
