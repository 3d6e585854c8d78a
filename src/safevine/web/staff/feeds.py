"""Feed endpoints: the CLI's ingest formats as request bodies, streamed to a spool file
(so a 100 MB body never sits in memory), applied, and answered with the CLI's summary."""

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from safevine.actions import ingest
from safevine.actions.actor import Actor
from safevine.domain.errors import FieldError
from safevine.ingest import events_csv, facilities_csv, protections_csv, roster_csv
from safevine.ingest.events import EventFormat
from safevine.ingest.fields import timestamp
from safevine.ingest.roster import Scope
from safevine.ingest.source import FeedLines, UnreadableSourceError, file_lines
from safevine.ingest.summary import IngestSummary
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState
from safevine.web.value_types import FacilityCodes

router = APIRouter(prefix="/api/v1/staff/feeds", tags=["staff: feeds"])
Ingester = Annotated[StaffToken, Depends(require("ingest"))]

JSONL_TYPES = {
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "application/x-jsonlines",
}
CSV_TYPES = {"text/csv", "application/csv"}
SPOOL_LIMIT = 1024 * 1024 * 1024  # refuse bodies over 1 GiB outright


def _body(media: dict[str, str]) -> dict[str, object]:
    """The request body in the OpenAPI schema, by media type: text beginning with the line
    that makes it that feed (a CSV header naming the required columns). The route reads the
    body as a stream, so FastAPI cannot declare it; docs/feeds.md gives the formats."""
    content = {
        name: {"schema": {"type": "string", "pattern": f"^{re.escape(first)}"}}
        for name, first in media.items()
    }
    return {"requestBody": {"required": True, "content": content}}


def _csv(*columns: str) -> str:
    return ",".join(columns) + "\n"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _spool(request: Request, folder: Path) -> Path:
    """Write the body to disk chunk by chunk; memory stays flat whatever its size."""
    path = folder / "body"
    size = 0
    with path.open("wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > SPOOL_LIMIT:
                raise HTTPException(413, "the body is over 1 GiB; split the feed")
            handle.write(chunk)
    if size == 0:
        raise HTTPException(400, "the body is empty")
    return path


async def _ingest(
    request: Request,
    token: StaffToken,
    kind: str,
    allowed: set[str],
    run: Callable[[Path, str], IngestSummary],
) -> JSONResponse:
    media = _media_type(request)
    if media not in allowed:
        raise HTTPException(
            415,
            f"send this feed as {' or '.join(sorted(allowed))}, not {media or 'no content type'}",
        )
    state = StaffState.of(request)
    with tempfile.TemporaryDirectory(prefix="safevine-feed-") as folder:
        body = await _spool(request, Path(folder))
        try:
            summary = await run_in_threadpool(run, body, media)
        except UnreadableSourceError as error:
            message = str(error).replace(str(body), "body")
            raise HTTPException(422, message) from None
    counter = state.metrics.ingest_records
    for outcome in ("applied", "duplicates", "rejected", "derived_events"):
        counter.labels(kind, outcome).inc(getattr(summary, outcome))
    status = 409 if summary.status == "refused" else 200
    return JSONResponse(summary.to_dict(), status_code=status)


def _lines(request: Request, path: Path) -> FeedLines:
    return file_lines(path, max_line_bytes=StaffState.of(request).settings.feed_max_line_bytes)


def _source(request: Request, kind: str) -> str:
    return request.headers.get("x-feed-name") or f"http-{kind}"


@router.post(
    "/events",
    summary="Custody events (JSON Lines or CSV)",
    openapi_extra=_body(
        {"application/x-ndjson": '{"event_id": ', "text/csv": _csv(*events_csv.REQUIRED)}
    ),
)
async def events(request: Request, token: Ingester) -> JSONResponse:
    engine = StaffState.of(request).records_engine

    def run(path: Path, media: str) -> IngestSummary:
        fmt: EventFormat = "csv" if media in CSV_TYPES else "jsonl"
        return ingest.events(
            engine,
            Actor(token.actor),
            _lines(request, path),
            source=_source(request, "events"),
            fmt=fmt,
        )

    return await _ingest(request, token, "events", JSONL_TYPES | CSV_TYPES, run)


@router.post(
    "/roster",
    summary="A roster snapshot (CSV)",
    openapi_extra=_body({"text/csv": _csv(*roster_csv.REQUIRED)}),
)
async def roster(
    request: Request,
    token: Ingester,
    scope: Annotated[Scope, Query()] = "listed",
    facility: FacilityCodes = None,
    snapshot_at: Annotated[str | None, Query(max_length=40)] = None,
) -> JSONResponse:
    engine = StaffState.of(request).records_engine
    try:
        when = timestamp(snapshot_at, "snapshot_at") if snapshot_at else None
    except FieldError as error:
        raise HTTPException(422, f"{error.field} {error.reason}") from None

    def run(path: Path, _media: str) -> IngestSummary:
        return ingest.roster(
            engine,
            Actor(token.actor),
            _lines(request, path),
            source=_source(request, "roster"),
            scope=scope,
            declared=facility or [],
            snapshot_at=when,
        )

    return await _ingest(request, token, "roster", CSV_TYPES, run)


@router.post(
    "/protections",
    summary="A protection list (CSV)",
    openapi_extra=_body({"text/csv": _csv(*protections_csv.REQUIRED)}),
)
async def protections(request: Request, token: Ingester) -> JSONResponse:
    engine = StaffState.of(request).records_engine

    def run(path: Path, _media: str) -> IngestSummary:
        return ingest.protections(
            engine,
            Actor(token.actor),
            _lines(request, path),
            source=_source(request, "protections"),
        )

    return await _ingest(request, token, "protections", CSV_TYPES, run)


@router.post(
    "/facilities",
    summary="A facility list (CSV)",
    openapi_extra=_body({"text/csv": _csv(*facilities_csv.OWN_COLUMNS)}),
)
async def facilities(request: Request, token: Ingester) -> JSONResponse:
    engine = StaffState.of(request).records_engine

    def run(path: Path, _media: str) -> IngestSummary:
        return ingest.facilities(
            engine, Actor(token.actor), _lines(request, path), source=_source(request, "facilities")
        )

    return await _ingest(request, token, "facilities", CSV_TYPES, run)
