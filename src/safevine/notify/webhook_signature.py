"""How a webhook body is signed: HMAC-SHA256 over the timestamp and the body.

The one definition for the transport that signs and for the public endpoint that checks
a receiver's signed acknowledgement (which must not load the delivery libraries).
"""

import hashlib
import hmac


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"
