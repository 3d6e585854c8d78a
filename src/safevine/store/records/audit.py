"""The audit trail: append-only entries chained by a keyed hash, verified and exported.

Each entry's link is an HMAC-SHA256, with a key the database does not hold, of a
canonical encoding of its sequence number, time, actor, action, target, reason and the
previous entry's link. Changing, deleting or reordering any entry breaks the chain at
that point, and `verify` names the first broken link; without the key, nobody can
recompute the chain after changing it. Entries from before migration 0013 keep their
plain SHA-256 links and are marked `sha256`; none may follow a keyed one.

The key is SAFEVINE_AUDIT_KEY, or derived from SAFEVINE_SECRET_KEY; a process with
neither (tests, a first try) uses a fixed development key, which `verify` reports.
"""

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Connection, insert, select, text

from safevine.config import configured_secret_key
from safevine.store.public.tables import operations_messages
from safevine.store.schema import audit_log

GENESIS = "0" * 64
KEYED, UNKEYED = "hmac", "sha256"
_DEVELOPMENT_KEY = b"safevine development audit key: set SAFEVINE_SECRET_KEY"


@lru_cache(maxsize=1)
def chain_key() -> tuple[bytes, bool]:
    """The key, and whether it is a real one (not the development key)."""
    explicit = os.environ.get("SAFEVINE_AUDIT_KEY", "").strip()
    if explicit:
        return explicit.encode(), True
    secret = configured_secret_key()
    if secret is None:
        return _DEVELOPMENT_KEY, False
    return hmac.new(secret, b"safevine audit chain v1", hashlib.sha256).digest(), True


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    reason: str | None
    prev_hash: str
    hash: str
    link: str = KEYED

    def as_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "link": self.link,
        }


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    reason: str | None,
    prev_hash: str,
    link: str = KEYED,
) -> str:
    canonical = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "reason": reason,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    if link == UNKEYED:
        return hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(chain_key()[0], canonical.encode(), hashlib.sha256).hexdigest()


def append(
    connection: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    reason: str | None,
    at: datetime,
) -> AuditEntry:
    """Add an entry in the caller's transaction (so it commits with what it records)."""
    if connection.dialect.name == "postgresql":
        # One appender at a time, or two could chain to the same predecessor.
        connection.execute(text("SELECT pg_advisory_xact_lock(7351832001)"))
    last = connection.execute(
        select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS
    at = at.astimezone(UTC)
    digest = entry_hash(seq, at, actor[:100], action, target[:200], reason, prev)
    connection.execute(
        insert(audit_log).values(
            seq=seq,
            at=at,
            actor=actor[:100],
            action=action,
            target=target[:200],
            reason=reason,
            prev_hash=prev,
            hash=digest,
            link=KEYED,
        )
    )
    return AuditEntry(seq, at, actor[:100], action, target[:200], reason, prev, digest)


@dataclass(frozen=True)
class Entry:
    """What `append_many` records, one entry each."""

    actor: str
    action: str
    target: str
    reason: str | None


def append_many(connection: Connection, items: list[Entry], at: datetime) -> None:
    """`append` for many entries at once, chained in order: one lock, one read of the
    head, one insert (an evaluation that finds hundreds of changes writes them so)."""
    if not items:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(7351832001)"))
    last = connection.execute(
        select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq = last.seq if last else 0
    prev = last.hash if last else GENESIS
    at = at.astimezone(UTC)
    rows = []
    for item in items:
        seq += 1
        actor, target = item.actor[:100], item.target[:200]
        digest = entry_hash(seq, at, actor, item.action, target, item.reason, prev)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": item.action,
                "target": target,
                "reason": item.reason,
                "prev_hash": prev,
                "hash": digest,
                "link": KEYED,
            }
        )
        prev = digest
    connection.execute(insert(audit_log), rows)


def entries(connection: Connection, since: datetime | None = None) -> Iterator[AuditEntry]:
    query = select(audit_log).order_by(audit_log.c.id)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    for r in connection.execute(query):
        yield AuditEntry(
            r.seq, r.at, r.actor, r.action, r.target, r.reason, r.prev_hash, r.hash, r.link
        )


@dataclass(frozen=True)
class Verification:
    entries: int
    head: str
    broken_at: int | None = None  # sequence number of the first bad entry
    problem: str = ""
    # False when the chain was checked with the development key (no secret configured).
    real_key: bool = True

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def _checkpoints(connection: Connection) -> list[tuple[int, str, str]]:
    """Every head the worker sent to the operations address: (seq, link, when)."""
    rows = connection.execute(
        select(operations_messages.c.payload, operations_messages.c.sent_at).where(
            operations_messages.c.kind == "audit_head", operations_messages.c.state == "sent"
        )
    ).all()
    return [
        (int(p["seq"]), str(p["link"]), f"{sent:%Y-%m-%d %H:%M} UTC")
        for p, sent in rows
        if isinstance(p, dict) and "seq" in p and "link" in p
    ]


def verify(connection: Connection) -> Verification:
    """Walk the chain in storage order and report the first link that does not hold, then
    check every head sent to the operations address is still in the chain as sent."""
    checkpoints = _checkpoints(connection)
    wanted = {seq for seq, _, _ in checkpoints}
    seen: dict[int, str] = {}
    result = _walk(connection, wanted, seen)
    if not result.ok:
        return result
    for seq, link, when in sorted(checkpoints):
        if seq not in seen:
            return replace(
                result,
                broken_at=seq,
                problem=f"the head sent to operations on {when} was entry {seq}, and the "
                f"chain now ends at {result.entries}: entries at the end were removed",
            )
        if not hmac.compare_digest(seen[seq], link):
            return replace(
                result,
                broken_at=seq,
                problem=f"entry {seq} is not the one sent to operations on {when}",
            )
    return result


def _walk(connection: Connection, wanted: set[int], seen: dict[int, str]) -> Verification:
    prev, expected_seq, count, keyed = GENESIS, 1, 0, False
    real = chain_key()[1]
    for entry in entries(connection):
        count += 1
        if entry.seq in wanted:
            seen[entry.seq] = entry.hash
        if entry.link == UNKEYED and keyed:
            return Verification(
                count,
                prev,
                entry.seq,
                f"entry {entry.seq} is linked without the key after keyed entries "
                "(the chain was rewritten)",
                real,
            )
        keyed = keyed or entry.link == KEYED
        if entry.seq != expected_seq:
            return Verification(
                count,
                prev,
                entry.seq,
                f"entry {entry.seq} found where {expected_seq} was expected "
                "(an entry was deleted or the order changed)",
                real,
            )
        if entry.prev_hash != prev:
            return Verification(
                count,
                prev,
                entry.seq,
                f"entry {entry.seq} does not point to the entry before it",
                real,
            )
        recomputed = entry_hash(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            entry.reason,
            entry.prev_hash,
            entry.link,
        )
        if not hmac.compare_digest(recomputed, entry.hash):
            return Verification(count, prev, entry.seq, f"entry {entry.seq} was altered", real)
        prev, expected_seq = entry.hash, expected_seq + 1
    return Verification(count, prev, real_key=real)
