"""Appending to the audit log: one hash-chained entry per thing done with personal data.

Data Protection Act 2018 s.62 asks for logs of collection, alteration, consultation,
disclosure, combination and erasure, with the time, who, and (for consultation and
disclosure) the justification and the recipients. Each entry here records the UTC time
to the millisecond, the user, the action, the ids of the objects it touched, a purpose
code and the outcome, and carries the SHA-256 of the entry before it: change, remove or
reorder an entry and ``verify`` names the first one that no longer fits.

An entry is written in the caller's transaction, so an action whose entry cannot be
written does not happen (fail closed). Appenders are serialised by updating the one
``audit_head`` row first: on PostgreSQL that is a row lock held to the end of the
transaction (and each statement then reads the head the previous appender committed,
under READ COMMITTED), on SQLite the write lock. The head row is created on the first
append with ``ON CONFLICT DO NOTHING``: two processes appending the first entries at
once both find it missing, and the second must wait on the first's row, not fail on
its key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ore.errors import OreError
from ore.store.access import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1
# The six kinds of processing s.62 names, and "access" for sign-in and user management.
CATEGORIES = ("collection", "alteration", "consultation", "disclosure", "combination", "erasure", "access")


def at_text(at: datetime) -> str:
    """The entry's time as hashed: UTC, milliseconds, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def entry_hash(seq: int, at: datetime, username: str, action: str, category: str, objects: str, purpose: str,
               outcome: str, detail: str, prev_hash: str) -> str:
    """SHA-256 over every field of an entry and the previous entry's hash (fields joined by US, 0x1f)."""
    fields = (str(seq), at_text(at), username, action, category, objects, purpose, outcome, detail, prev_hash)
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def hash_of(e: AuditEntry) -> str:
    return entry_hash(e.seq, e.at, e.username, e.action, e.category, e.objects, e.purpose, e.outcome, e.detail,
                      e.prev_hash)


def _millis(at: datetime) -> datetime:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def record(
    session: Session, *, user: str, action: str, category: str, objects: Iterable[str] = (), purpose: str,
    outcome: str = "ok", detail: dict[str, Any] | None = None, at: datetime | None = None,
) -> AuditEntry:
    """Append one entry in ``session``'s transaction and return it (its ``seq`` is its place in the chain)."""
    if category not in CATEGORIES:
        raise OreError(f"audit category {category!r}: one of {', '.join(CATEGORIES)}")
    if not user or not action or not purpose:
        raise OreError("an audit entry needs a user, an action and a purpose")
    when = _millis(at or datetime.now(UTC))
    head_t = AuditHead.__table__
    # Take the appender's lock before reading the head, so two appenders cannot both extend it.
    lock = update(head_t).where(head_t.c.id == HEAD_ID).values(seq=head_t.c.seq)
    if session.execute(lock).rowcount == 0:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(head_t).values(id=HEAD_ID, seq=0, hash=GENESIS).on_conflict_do_nothing())
        session.execute(lock)  # the row exists now, ours or another appender's: lock it
    last_seq, last_hash = session.execute(select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == HEAD_ID)).one()
    seq = last_seq + 1
    objs = json.dumps([str(o) for o in objects], ensure_ascii=False)
    det = json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, default=str)
    h = entry_hash(seq, when, user, action, category, objs, purpose, outcome, det, last_hash)
    session.execute(insert(AuditEntry.__table__).values(
        seq=seq, at=when, username=user, action=action, category=category, objects=objs, purpose=purpose,
        outcome=outcome, detail=det, prev_hash=last_hash, hash=h))
    session.execute(update(head_t).where(head_t.c.id == HEAD_ID).values(seq=seq, hash=h))
    entry = AuditEntry(seq=seq, at=when, username=user, action=action, category=category, objects=objs,
                       purpose=purpose, outcome=outcome, detail=det, prev_hash=last_hash, hash=h)
    return entry


def record_for(
    session: Session, *, action: str, category: str, objects: Iterable[str] = (), default_purpose: str,
    detail: dict[str, Any] | None = None, outcome: str = "ok", user: str | None = None,
) -> AuditEntry:
    """Append an entry for the session's user, with the purpose the session was opened for (else the default).

    ``user`` names the actor for internal (system) sessions, which have no signed-in user.
    """
    from ore.auth.principal import is_system
    from ore.auth.scope import principal_of

    who = principal_of(session)
    name = (user or who.username) if is_system(who) else who.username
    return record(session, user=name, action=action, category=category, objects=objects,
                  purpose=session.info.get("purpose") or default_purpose, outcome=outcome, detail=detail)
