"""`make run` end to end: the demo process serves the site, sends mail to its own inbox,
and its simulator makes a real notification arrive for a newcomer who registers."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from safevine.web.server import free_port

SAFEVINE = Path(sys.executable).parent / "safevine"


def wait_for(predicate: object, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_newcomer_registers_and_a_notification_arrives(tmp_path: Path) -> None:
    port, mail_port = free_port(), free_port()
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SAFEVINE_DEMO": "true",
        "SAFEVINE_SECRET_KEY": "k" * 40,
        "COLUMNS": "200",
    }
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
            "--every",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base), 120, "the demo site")
        client = httpx.Client(base_url=base, timeout=30)
        assert client.get("/demo/inbox").status_code == 200
        listed = _first_public(tmp_path / "demo.db")
        found = client.post("/api/v1/search", json=listed).json()["results"]
        assert len(found) == 1
        started = client.post(
            "/api/v1/registrations",
            json={
                "person": found[0]["reference"],
                "channel": "email",
                "address": "newcomer@example.org",
                "language": "en",
            },
        ).json()
        inbox = wait_for(
            lambda: (
                "confirmation code is" in client.get("/demo/inbox").text
                and client.get("/demo/inbox").text
            ),
            30,
            "the code in the inbox",
        )
        code = re.search(r"confirmation code is (\d{6})", str(inbox)).group(1)  # type: ignore[union-attr]
        confirmed = client.post(
            "/api/v1/registrations/confirm",
            json={"registration": started["registration"], "code": code},
        )
        assert confirmed.status_code == 200
        name = found[0]["name"]
        wait_for(lambda: name in client.get("/demo/inbox").text, 60, "a notification")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()


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
            "WHERE custody_state = 'in_custody' "
            "ORDER BY a_number LIMIT 1"
        )
        .fetchone()
    )
    return {"a_number": row[0], "country_of_birth": row[1]}
