"""Retention: when a person's data is due for review, and erasing it (``ore retention``).

Review dates come from ``retention.yaml`` (or ``ORE_RETENTION_FILE``): a period per
outcome, counted from the case's last step. A purge deletes the personal data (name,
date of birth, postcode, identifiers, grade reasons; records, holding links, the
recommendations' sentences, recorded changes, disclosures' links) and keeps what is not
personal (the case row with its milestones, so the funnel's counts stay, and the
transitions). The erasure is an audit entry naming the person reference and counts of
what was deleted, never the deleted data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.auth.scope import principal_of
from ore.cases.deadlines import parse_duration
from ore.cases.queries import case_query
from ore.errors import OreError
from ore.store import PERSONS_LOCK, serialise
from ore.store.access import Disclosure
from ore.store.models import Case, Change, HoldingLink, Person, Recommendation, Record


@lru_cache(maxsize=4)
def retention_policy(path: str | None = None) -> dict[str, timedelta]:
    path = path or os.environ.get("ORE_RETENTION_FILE")
    text = (Path(path).read_text(encoding="utf-8") if path
            else resources.files("ore.cases").joinpath("retention.yaml").read_text(encoding="utf-8"))
    try:
        periods = {k: parse_duration(str(v)) for k, v in yaml.safe_load(text)["review_after"].items()}
    except (KeyError, TypeError, AttributeError):
        raise OreError(f"{path or 'retention.yaml'}: expected review_after: {{status: duration}}") from None
    if "default" not in periods:
        raise OreError(f"{path or 'retention.yaml'}: review_after needs a default")
    return periods


@dataclass(frozen=True)
class Due:
    person_ref: str
    package_ref: str
    status: str
    last_step: datetime
    review_on: datetime


def review(session: Session, *, now: datetime | None = None) -> list[Due]:
    """Cases whose review date has passed (erased persons excluded), earliest first; logged as consultation."""
    principal_of(session).require("retention.review", "review retention")
    now = now or datetime.now(UTC)
    periods = retention_policy()
    due = []
    for c in session.scalars(case_query(session).where(Person.erased_at.is_(None))):
        when = c.updated_at + periods.get(c.status, periods["default"])
        if when <= now:
            due.append(Due(c.person.person_ref, c.person.package.package_ref, c.status, c.updated_at, when))
    due.sort(key=lambda d: (d.review_on, d.person_ref))
    record_for(session, action="retention.review", category="consultation", default_purpose="retention",
               objects=[d.person_ref for d in due])
    return due


def purge(session: Session, case: Case, *, reason: str, now: datetime | None = None) -> dict[str, int]:
    """Erase the person's personal data; refuses a case not yet due. Returns counts of what went."""
    principal_of(session).require("retention.purge", "erase personal data")
    serialise(session, PERSONS_LOCK)  # an import running now would bring the records back after us
    now = now or datetime.now(UTC)
    p = case.person
    if p.erased_at is not None:
        raise OreError(f"{p.person_ref} was erased already ({p.erased_at:%Y-%m-%d})")
    periods = retention_policy()
    review_on = case.updated_at + periods.get(case.status, periods["default"])
    if review_on > now:
        raise OreError(f"{p.person_ref} is not due for review until {review_on:%Y-%m-%d} ({case.status})")
    if not reason.strip():
        raise OreError("say why the data is erased (--reason)")
    counts = {
        "records": session.execute(delete(Record).where((Record.person_id == p.id) | (Record.subject_id == p.id))
                                   ).rowcount,
        "holding_links": session.execute(delete(HoldingLink).where(HoldingLink.person_id == p.id)).rowcount,
        "changes": session.execute(delete(Change).where(Change.person_id == p.id)).rowcount,
        "recommendations": session.execute(update(Recommendation).where(Recommendation.person_id == p.id)
                                           .values(sentences="[]")).rowcount,
        "disclosure_links": session.execute(update(Disclosure).where(Disclosure.person_id == p.id)
                                            .values(person_id=None)).rowcount,
        **_erase_watch(session, case),
    }
    for f in ("display_name", "date_of_birth", "postcode", "grade_reasons", "identifiers"):
        setattr(p, f, None)
    p.erased_at = now
    session.flush()
    record_for(session, action="retention.purge", category="erasure", default_purpose="retention",
               objects=[p.person_ref], detail={"package": p.package.package_ref, "status": case.status,
                                               "deleted": counts, "reason": reason.strip()})
    return counts


def _erase_watch(session: Session, case: Case) -> dict[str, int]:
    """The watch's rows about the person (the feed rows of their alerts, the alerts, CPORT items);
    the subject stays, off the watch as erased, so that a later screen does not watch them again."""
    from ore.store.watch_models import CportAssessment, WatchAlert, WatchAlertRow, WatchSubject

    subject = select(WatchSubject.id).where(WatchSubject.case_id == case.id).scalar_subquery()
    counts = {
        "watch_alert_rows": session.execute(delete(WatchAlertRow).where(WatchAlertRow.subject_id == subject)).rowcount,
        "watch_alerts": session.execute(delete(WatchAlert).where(WatchAlert.subject_id == subject)).rowcount,
        "cport_assessments": session.execute(delete(CportAssessment).where(CportAssessment.subject_id == subject)
                                             ).rowcount,
    }
    session.execute(update(WatchSubject).where(WatchSubject.case_id == case.id)
                    .values(on_watch=False, off_reason="erased"))
    return counts
