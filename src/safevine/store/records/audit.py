"""The audit trail: append-only entries chained by SHA-256, verified and exported.

Each entry's hash covers a canonical encoding of its sequence number, time, actor, action,
target, reason and the previous entry's hash. Changing, deleting or reordering any entry
breaks the chain at that point, and `verify` names the first broken link.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, text

from safevine.store.schema import audit_log

GENESIS = "0" * 64


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
        }


def entry_hash(
    seq: int, at: datetime, actor: str, action: str, target: str, reason: str | None, prev_hash: str
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
    return hashlib.sha256(canonical.encode()).hexdigest()


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
        )
    )
    return AuditEntry(seq, at, actor[:100], action, target[:200], reason, prev, digest)


def entries(connection: Connection, since: datetime | None = None) -> Iterator[AuditEntry]:
    query = select(audit_log).order_by(audit_log.c.id)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    for r in connection.execute(query):
        yield AuditEntry(r.seq, r.at, r.actor, r.action, r.target, r.reason, r.prev_hash, r.hash)


@dataclass(frozen=True)
class Verification:
    entries: int
    head: str
    broken_at: int | None = None  # sequence number of the first bad entry
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(connection: Connection) -> Verification:
    """Walk the chain in storage order and report the first link that does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries(connection):
        count += 1
        if entry.seq != expected_seq:
            return Verification(
                count,
                prev,
                entry.seq,
                f"entry {entry.seq} found where {expected_seq} was expected "
                "(an entry was deleted or the order changed)",
            )
        if entry.prev_hash != prev:
            return Verification(
                count, prev, entry.seq, f"entry {entry.seq} does not point to the entry before it"
            )
        recomputed = entry_hash(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            entry.reason,
            entry.prev_hash,
        )
        if recomputed != entry.hash:
            return Verification(count, prev, entry.seq, f"entry {entry.seq} was altered")
        prev, expected_seq = entry.hash, expected_seq + 1
    return Verification(count, prev)
