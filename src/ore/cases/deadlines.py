"""Deadlines: how long a force has to act on a disseminated case, by its confirmed band.

The times come from the priority policy (``deadlines`` in ore/assess/policy.yaml:
P1 24 hours, P2 7 days, P3 14 days, P4 30 days), counted from dissemination. The
clock stops at the first action on the lead: an arrest, an interview, no further
action, or elimination. A case is overdue when its due time has passed with no
action; a sealed case is never listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import Session

from ore.errors import OreError
from ore.store.models import Case, Person

_UNITS = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"24 hours"``, ``"7 days"``, ``"2 weeks"`` -> a timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*(minute|hour|day|week)s?\s*", text or "")
    if not m:
        raise OreError(f"deadline {text!r} is not a duration such as '24 hours' or '7 days'")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


@lru_cache(maxsize=8)
def policy_deadlines(policy: Path | None = None) -> dict[str, timedelta]:
    """Deadline per band from the priority policy (the shipped one unless ``policy`` names another)."""
    from ore.assess import load_policy

    return {band: parse_duration(text) for band, text in load_policy(policy).deadlines.items()}


@dataclass(frozen=True)
class Overdue:
    person_ref: str
    display_name: str | None
    band: str | None
    force_code: str | None
    status: str
    disseminated_at: datetime
    due_at: datetime
    overdue_by: timedelta


def overdue(session: Session, *, now: datetime | None = None, force: str | None = None) -> list[Overdue]:
    """Disseminated cases past their due time with no action yet, most overdue first."""
    now = now or datetime.now(UTC)
    from ore.cases.queries import case_query, consulted

    q = (
        case_query(session)
        .where(Case.due_at.is_not(None), Case.due_at < now, Case.first_action_at.is_(None),
               Case.sealed.is_(False), Case.status.not_in(("eliminated", "no_further_action")))
        .order_by(Case.due_at, Person.person_ref)
    )
    if force:
        q = q.where(Case.force_code == force)
    found = [
        Overdue(c.person.person_ref, c.person.display_name, c.band, c.force_code, c.status,
                c.disseminated_at, c.due_at, now - c.due_at)  # type: ignore[arg-type,operator]
        for c in session.scalars(q)
    ]
    consulted(session, "cases.overdue", [o.person_ref for o in found], {"force": force} if force else None)
    return found
