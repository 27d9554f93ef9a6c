"""Walking the audit chain: the first entry that does not fit, and why.

What each tampering looks like:
- a changed byte in an entry: its content no longer matches its hash;
- an entry deleted: a gap in the sequence, and the next entry's previous-hash no longer
  matches the entry before it;
- entries reordered: an entry's content (which includes its position) no longer matches
  its hash at the position it now holds;
- a truncated tail: the head (written with every append) records a later entry than
  the last one present;
- an older copy of the whole database restored: only a checkpoint kept elsewhere can tell
  (see ``ore.audit.checkpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.audit.chain import GENESIS, HEAD_ID, hash_of
from ore.store.access import AuditEntry, AuditHead


@dataclass(frozen=True)
class Verification:
    entries: int  # entries checked
    last_seq: int
    last_hash: str
    first_bad: int | None = None  # the first entry (sequence number) that does not fit
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def verify_chain(session: Session, *, batch: int = 5000) -> Verification:
    """Check every entry in order and the head; stop at the first that does not fit."""
    prev_seq, prev_hash, n = 0, GENESIS, 0
    q = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)
    for e in session.scalars(q):
        n += 1
        expected = prev_seq + 1
        if e.seq != expected:
            return Verification(n - 1, prev_seq, prev_hash, expected,
                                f"entry {expected} is missing: the log goes from entry {prev_seq} to entry {e.seq}")
        if hash_of(e) != e.hash:
            return Verification(n - 1, prev_seq, prev_hash, e.seq,
                                f"entry {e.seq} does not match its hash: it was altered, or moved from another "
                                "position")
        if e.prev_hash != prev_hash:
            return Verification(n - 1, prev_seq, prev_hash, e.seq,
                                f"entry {e.seq} does not follow entry {prev_seq} (its previous-hash differs): "
                                "entries were removed, replaced or reordered")
        prev_seq, prev_hash = e.seq, e.hash
    head = session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID))
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    if head_seq > prev_seq:
        return Verification(n, prev_seq, prev_hash, prev_seq + 1,
                            f"entries {prev_seq + 1} to {head_seq} are missing: the log was cut short after entry "
                            f"{prev_seq} (the head records entry {head_seq})")
    if head_seq < prev_seq or head_hash != prev_hash:
        return Verification(n, prev_seq, prev_hash, head_seq + 1 if head_seq < prev_seq else prev_seq,
                            f"the head records entry {head_seq} ({head_hash[:12]}...) but the log ends at entry "
                            f"{prev_seq} ({prev_hash[:12]}...): entries were written around the chain")
    return Verification(n, prev_seq, prev_hash)
