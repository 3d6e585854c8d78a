"""What an ingest run did, as the CLI prints it and (later) the staff API returns it."""

from dataclasses import dataclass, field
from typing import Any

from safevine.store.records.batches import Reject

# Rejects beyond this many are counted and stored, but not repeated in the summary.
SHOWN_REJECTS = 100


@dataclass
class IngestSummary:
    kind: str
    source: str
    batch_id: int | None = None
    status: str = "completed"
    total: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    derived_events: int = 0
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hold_id: int | None = None
    # Who sent the batch, as the audit log names them (see `batch_run.finish`).
    actor: str = ""

    def snapshot(self) -> tuple[tuple[int, int, int, int, int], int, int]:
        """The counts and list lengths, for `restore` after a failed attempt."""
        counts = (self.total, self.applied, self.duplicates, self.rejected, self.derived_events)
        return counts, len(self.rejects), len(self.notes)

    def restore(self, saved: tuple[tuple[int, int, int, int, int], int, int]) -> None:
        counts, rejects, notes = saved
        self.total, self.applied, self.duplicates, self.rejected, self.derived_events = counts
        del self.rejects[rejects:], self.notes[notes:]

    def add_rejects(self, rejects: list[Reject]) -> None:
        self.rejected += len(rejects)
        room = SHOWN_REJECTS - len(self.rejects)
        if room > 0:
            self.rejects.extend(rejects[:room])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "batch_id": self.batch_id,
            "status": self.status,
            "total": self.total,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "derived_events": self.derived_events,
            "rejects": [
                {"line": r.line, "field": r.field, "reason": r.reason} for r in self.rejects
            ],
            "rejects_shown": len(self.rejects),
            "hold": self.hold_id,
            "notes": self.notes,
        }
