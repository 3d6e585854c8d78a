"""The "I got this" link of an email: a page that asks, and a button that says so, which
acknowledges the message. Following the link changes nothing (mail scanners follow links);
only the button, a form posted from this site, does.

The link carries the attempt's random key and nothing else. Every answer is the same
whether the key is known, already acknowledged, or nonsense, so the pages tell a stranger
nothing.
"""

import re
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from safevine.notify.compose import ACKNOWLEDGE_PATH
from safevine.store.public import receipts
from safevine.web import csrf
from safevine.web.public.pages import form_token_ok, language_of, page
from safevine.web.state import AppState

router = APIRouter(include_in_schema=False)
_KEY = re.compile(r"[0-9a-f]{8,48}(?:\.[0-9]{1,4})?")


@router.get(ACKNOWLEDGE_PATH + "/{key}", response_class=HTMLResponse)
def ask(request: Request, key: str) -> Response:
    language = language_of(request)
    return page(request, "got_it.html", language, action=request.url.path, done=False)


@router.post(ACKNOWLEDGE_PATH + "/{key}", response_class=HTMLResponse)
async def acknowledge(request: Request, key: str) -> Response:
    form = await request.form()
    language = language_of(request, form.get("lang"))
    if not form_token_ok(request, form.get(csrf.FIELD)):
        return page(request, "message.html", language, status=400, kind="bad_request")
    if _KEY.fullmatch(key):
        await run_in_threadpool(_acknowledge, AppState.of(request), key)
    return page(request, "got_it.html", language, action=request.url.path, done=True)


def _acknowledge(state: AppState, key: str) -> None:
    with state.public_engine.begin() as connection:
        receipts.acknowledge_key(connection, key, datetime.now(UTC))
