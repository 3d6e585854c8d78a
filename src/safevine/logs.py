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


# Libraries that log what they were given below WARNING: httpx logs every request's URL
# (a webhook's, query string included) at INFO, httpcore its hosts at DEBUG, and mail
# and server libraries their peers and envelopes. Held at WARNING, where none of them
# logs a URL, an address or a body.
_CHATTY = (
    "asyncio",
    "aiosmtplib",
    "aiosmtpd",
    "mail.log",
    "h11",
    "hpack",
    "httpcore",
    "httpx",
    "multipart",
    "python_multipart",
    "sqlalchemy",
    "urllib3",
    "uvicorn",
)


def _ours_or_serious(record: logging.LogRecord) -> bool:
    """Below WARNING only safevine's own records pass: a library we have not listed
    (or one a dependency starts to log from) cannot put what it was given in the log."""
    return record.levelno >= logging.WARNING or record.name.partition(".")[0] == "safevine"


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(_ours_or_serious)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Access logs would carry raw paths; our own request log carries route templates.
    logging.getLogger("uvicorn.access").disabled = True
