"""Searching the audit log (auditors only): by person, user, time range, action or category.

A search is itself a consultation of personal data, so it is logged, with the query.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.audit.chain import record
from ore.auth.principal import Principal
from ore.store.access import AuditEntry


def search(
    session: Session, who: Principal, *, person: str | None = None, user: str | None = None,
    since: datetime | None = None, until: datetime | None = None, action: str | None = None,
    category: str | None = None, purpose: str = "audit", limit: int = 1000,
) -> list[AuditEntry]:
    """Entries matching every criterion given, oldest first; the search is logged before it runs."""
    who.require("audit.read", "search the audit log")
    query = {k: v for k, v in (("person", person), ("user", user), ("since", since), ("until", until),
                               ("action", action), ("category", category)) if v is not None}
    record(session, user=who.username, action="audit.search", category="consultation",
           objects=[person] if person else [], purpose=purpose, detail={"query": query})
    q = select(AuditEntry)
    if person:
        q = q.where(AuditEntry.objects.contains(f'"{person}"', autoescape=True))  # objects is a JSON list of ids
    if user:
        q = q.where(AuditEntry.username == user)
    if since:
        q = q.where(AuditEntry.at >= since)
    if until:
        q = q.where(AuditEntry.at < until)
    if action:
        q = q.where(AuditEntry.action == action)
    if category:
        q = q.where(AuditEntry.category == category)
    return list(session.scalars(q.order_by(AuditEntry.seq).limit(limit)))
