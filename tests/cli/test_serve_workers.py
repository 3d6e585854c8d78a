"""`safevine serve --workers N`: N processes answering on one port."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import Engine

from safevine.web.server import free_port
from tests.canaries import PUBLIC, UNSCREENED, plant
from tests.loops import until_answering, wait_until
from tests.web.conftest import SECRET

SAFEVINE = Path(sys.executable).parent / "safevine"


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def test_two_processes_serve_one_port_and_stop_together(sqlite_engine: Engine) -> None:
    plant(sqlite_engine)
    port = free_port()
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
        "SAFEVINE_SECRET_KEY": SECRET.decode(),
        "SAFEVINE_RATE_LIMITS": "false",
    }
    server = subprocess.Popen(
        [str(SAFEVINE), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            until_answering(client, server)
            workers = _children(server.pid)
            # uvicorn's supervisor forks two serving processes (and may keep a helper).
            assert len(workers) >= 2, workers
            for _ in range(20):
                found = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()
                assert [r["name"] for r in found["results"]] == ["Marisol Quintanilla"]
                hidden = client.post("/api/v1/search", json=UNSCREENED.by_a_number()).json()
                assert hidden == {"results": []}
            # A form token made by one process is good in the other: one secret key.
            for _ in range(6):
                client.get("/")
                page = client.post(
                    "/",
                    data={
                        **PUBLIC.by_a_number(),
                        "csrf_token": client.cookies.get("sv_csrf") or "",
                    },
                )
                assert page.status_code == 200 and "Quintanilla" in page.text
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert "with 2 processes" in output
    # A process may still be exiting as its parent returns.
    wait_until(
        f"the serving processes to exit ({output})", lambda: not any(map(_running, workers)), 15
    )


def _running(pid: int) -> bool:
    """Alive: a process that exited but was not reaped yet (a zombie) is not."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_workers_need_a_lasting_key_and_no_metrics_port(sqlite_engine: Engine) -> None:
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
        "SAFEVINE_SECRET_KEY": SECRET.decode(),
    }
    both = subprocess.run(
        [str(SAFEVINE), "serve", "--workers", "2", "--metrics-port", "9999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert both.returncode == 2 and "--metrics-port serves one process" in both.stderr
