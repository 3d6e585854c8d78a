"""What the public server carries because every command shares one package: importing
`safevine.cli` (as the console script does) must not pull in Alembic or the ingest path,
nor hash a password, and must leave no transient peak of memory behind it."""

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import safevine.cli, safevine.web.public_app
from safevine.store.records import staff_accounts
status = dict(
    line.split(":", 1) for line in open("/proc/self/status") if line.startswith("Vm")
)
print(json.dumps({
    "modules": sorted(sys.modules),
    "hashed": staff_accounts.dummy_hash.cache_info().currsize,
    "peak_kb": int(status["VmHWM"].split()[0]),
    "rss_kb": int(status["VmRSS"].split()[0]),
}))
"""


@pytest.fixture(scope="module")
def probe() -> dict[str, object]:
    """What a fresh process that imports the commands holds (one process for the module)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_the_commands_import_neither_alembic_nor_the_ingest_path_nor_hash(
    probe: dict[str, object],
) -> None:
    modules = probe["modules"]
    assert isinstance(modules, list)
    heavy = [m for m in modules if m.split(".")[0] == "alembic" or m == "safevine.ingest.events"]
    assert heavy == []
    assert probe["hashed"] == 0


def test_importing_the_commands_leaves_no_transient_peak(probe: dict[str, object]) -> None:
    # An Argon2 hash at import took 64 MiB and gave it back: the process's peak stayed.
    peak, rss = probe["peak_kb"], probe["rss_kb"]
    assert isinstance(peak, int) and isinstance(rss, int)
    assert peak - rss < 16 * 1024, (peak, rss)


def test_the_staff_service_makes_the_unknown_name_hash_at_start() -> None:
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "from safevine.config import Settings; "
            "from safevine.web.staff_app import create_staff_app; "
            "from safevine.store.records import staff_accounts; "
            "create_staff_app(Settings(database_url='sqlite://')); "
            "print(staff_accounts.dummy_hash.cache_info().currsize)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert started.stdout.strip() == "1"
