"""The `safevine` command as a user runs it: a real process, a real database file."""

import json
import os
import re
import smtplib
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from safevine.web.server import free_port
from tests.builders import days_ago, event, person

SAFEVINE = Path(sys.executable).parent / "safevine"


def run(database: str, *args: str, given: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command, with `given` typed at its prompts."""
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": database,
        "SAFEVINE_SECRET_KEY": "k" * 40,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [str(SAFEVINE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        input=given,
    )


PASSWORD = "a long enough password"


def make_account(database: str, name: str, role: str) -> str:
    """The account's second-factor key, as `staff account create` shows it once."""
    made = run(
        database, "staff", "account", "create", name, "--role", role, given=f"{PASSWORD}\n" * 2
    )
    assert made.returncode == 0, made.stderr
    return re.search(r"key: ([A-Z2-7]+)", made.stdout).group(1)  # type: ignore[union-attr]


def confirming(name: str, key: str, password: str = PASSWORD) -> str:
    return f"{name}\n{password}\n{pyotp.TOTP(key).now()}\n"


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(url, "db", "upgrade").returncode == 0
    return url


def test_ingest_show_protect_and_clear(database: str, tmp_path: Path) -> None:
    facilities = tmp_path / "facilities.csv"
    facilities.write_text("code,name,city,state\nF1,Eloy Detention Center,Eloy,AZ\n")
    result = run(database, "ingest", "facilities", str(facilities), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == 1

    feed = tmp_path / "events.jsonl"
    who = person("A-123-456-789", "José", "López")
    feed.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                event("e1", "booked", days_ago(3), who),
                event("e2", "bogus", days_ago(1), who),
            ]
        )
        + "\n"
    )
    result = run(database, "ingest", "events", str(feed), "--json")
    assert result.returncode == 3  # applied, with a rejected record
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("applied", "duplicates", "rejected", "derived_events")} == {
        "applied": 1,
        "duplicates": 0,
        "rejected": 1,
        "derived_events": 0,
    }
    assert summary["rejects"][0]["line"] == 2 and summary["rejects"][0]["field"] == "kind"

    shown = json.loads(run(database, "person", "show", "123456789", "--json").stdout)
    assert (shown["a_number"], shown["protection"], shown["custody_state"]) == (
        "A-123-456-789",
        "unscreened",
        "in_custody",
    )

    assert "now protected" in run(database, "protect", "A123456789", "--reason", "1367").stdout
    asked = run(database, "clear", "A123456789", "--reason", "screened", "--actor", "ana").stdout
    assert "clear request 1" in asked and "stays protected" in asked
    assert (
        json.loads(run(database, "person", "show", "A123456789", "--json").stdout)["protection"]
        == "protected"
    )
    ana, luis = (
        make_account(database, "ana", "supervisor"),
        make_account(database, "luis", "supervisor"),
    )
    same = run(database, "clear-confirm", "1", given=confirming("ana", ana))
    assert same.returncode == 4 and "different person" in same.stderr  # not allowed
    # Typing another person's name is not enough: their password and code are asked for.
    guessed = run(
        database, "clear-confirm", "1", given=confirming("luis", luis, "not the password")
    )
    assert guessed.returncode == 4 and "wrong name, password or code" in guessed.stderr
    confirmed = run(database, "clear-confirm", "1", given=confirming("luis", luis))
    assert "now cleared" in confirmed.stdout, confirmed.stderr
    history = json.loads(run(database, "person", "show", "A123456789", "--json").stdout)
    assert [c["reason"] for c in history["protection_history"]] == ["1367", "screened"]

    text = run(database, "person", "show", "A-123-456-789").stdout
    assert "José López" in text and "cleared" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["person", "show", "12"], "A-NUMBER has 2 digits"),
        (["person", "show", "987654321"], "no person with A-number A-987-654-321"),
        (["clear", "987654321", "--reason", " "], "no person"),
        (["clear-confirm", "99"], "no pending clear request"),
        (["token", "create", "--name", "x", "--scope", "root"], "scopes must be among"),
        (["ingest", "events", "/no/such/file.jsonl"], "no such file"),
        (["bounces", "--seconds", "0.1"], "set SAFEVINE_BOUNCE_ADDRESS"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(database: str, args: list[str], message: str) -> None:
    result = run(database, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_commands_on_a_missing_database_say_what_to_do(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'none.db'}", "person", "show", "123456789")
    assert result.returncode == 2 and "run `safevine db upgrade`" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_arguments_out_of_range_are_usage_errors_not_tracebacks(database: str) -> None:
    for args in (
        ("holds", "show", str(2**64)),
        ("holds", "release", "0"),
        ("clear-confirm", str(2**63)),
        ("protect", "A-123-456-789", "--reason", "a\x01b"),
        ("token", "create", "--name", "desk\x1b[2J", "--scope", "read"),
    ):
        result = run(database, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "Invalid value" in result.stderr, args


def test_dates_at_the_edge_of_the_calendar_are_usage_errors(database: str) -> None:
    for since in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "0001-01-01", "x"):
        result = run(database, "audit", "export", "--since", since)
        assert result.returncode == 2, (since, result.stderr)
        assert "Traceback" not in result.stderr and "--since" in result.stderr, since
    assert run(database, "audit", "export", "--since", "2026-01-01").returncode == 0


def test_the_bounce_receiver_starts_listens_and_stops(database: str) -> None:
    port = free_port()
    env = {**os.environ, "SAFEVINE_DATABASE_URL": database, "SAFEVINE_SECRET_KEY": "k" * 40}
    env["SAFEVINE_BOUNCE_ADDRESS"] = "bounces@agency.example"
    command = [str(SAFEVINE), "bounces", "--port", str(port), "--seconds", "20"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        assert f"smtp://127.0.0.1:{port}" in server.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.ehlo()[0] == 250
            client.docmd("MAIL FROM:<>")
            assert client.docmd("RCPT TO:<bounces+0123456789abcdef@agency.example>")[0] == 250
        server.terminate()
        assert server.wait(timeout=20) == 0
