"""A webhook receiver acknowledges a message: `POST /api/v1/webhooks/ack` with the body
`{"idempotency_key": "<the message's Idempotency-Key>"}`, signed as safevine signs what it
sends (`X-Safevine-Timestamp`, `X-Safevine-Signature: sha256=HMAC(secret, timestamp + "."
+ body)`) with the registration's webhook secret. A delivered message becomes
`acknowledged`: a case system says a person saw it.

Every answer is 204, whatever the key or the signature: only a correct signature by the
registration's own secret, within five minutes, changes anything, and nothing tells a
caller whether a key exists.
"""

import hmac
import json
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from safevine.notify.webhook_signature import signature
from safevine.store.public import receipts
from safevine.web.state import AppState

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhook receivers"])
FRESH_SECONDS = 300
LARGEST_BODY = 1_000


@router.post("/ack", status_code=204, summary="A webhook receiver acknowledges a message")
async def acknowledge(request: Request) -> Response:
    body = await request.body()
    timestamp = request.headers.get("x-safevine-timestamp", "")
    signed = request.headers.get("x-safevine-signature", "")
    key = _key(body)
    if key and timestamp.isdigit() and abs(time.time() - int(timestamp)) <= FRESH_SECONDS:
        await run_in_threadpool(_acknowledge, AppState.of(request), key, timestamp, body, signed)
    return Response(status_code=204)


def _key(body: bytes) -> str | None:
    if len(body) > LARGEST_BODY:
        return None
    try:
        value = json.loads(body).get("idempotency_key")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def _acknowledge(state: AppState, key: str, timestamp: str, body: bytes, signed: str) -> None:
    with state.public_engine.begin() as connection:
        secret = receipts.webhook_secret_of(connection, state.vault, key)
        if secret is None or not hmac.compare_digest(signature(secret, timestamp, body), signed):
            return
        receipts.acknowledge_key(connection, key, datetime.now(UTC))
