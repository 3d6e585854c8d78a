"""Structured logs: one JSON object per line, with internal ids only.

Nothing that names a person goes here: no names, A-numbers, contacts or search terms,
and routes are logged by their template (`/m/{token}`), never the path that was asked for.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from safevine.failures import describe

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[1] is not None:
            # Never the traceback's text: an exception's message can hold what it was given.
            line.update(describe(record.exc_info[1]))
        return json.dumps(line, default=str)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs would carry raw paths; our own request log carries route templates.
    logging.getLogger("uvicorn.access").disabled = True
