"""What a result was measured on: the machine and the versions of everything in the path."""

import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

PACKAGES = ("sqlalchemy", "psycopg", "fastapi", "starlette", "uvicorn", "aiosmtplib", "aiosmtpd")


def describe(postgres_url: str | None) -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(_mem_total_kb() / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgres_version(postgres_url) if postgres_url else None,
        "postgresql_settings": _postgres_settings(postgres_url) if postgres_url else None,
        "wrk": _wrk_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _postgres_version(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception:
        return None
    return str(version)


# The server settings that change what a figure means: autovacuum off leaves statistics
# as the benchmark's own settle step wrote them; the rest size caches and commits.
SETTINGS = ("autovacuum", "shared_buffers", "work_mem", "synchronous_commit", "fsync", "jit")


def _postgres_settings(url: str) -> dict[str, str] | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(:names)"
                ),
                {"names": list(SETTINGS)},
            ).all()
        engine.dispose()
    except Exception:
        return None
    return {str(name): str(value) for name, value in rows}


def _wrk_version() -> str | None:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
