"""Watched persons as offender managers work them: finding one, naming their manager's force, CPORT.

A watched person is found by their person reference (and package, where the reference is
in several) among the subjects the user may see (``ore.watch.access``): an offender
manager reads no case, so the watch keeps the references they need. Every change is an
audit entry (alteration) in the same transaction; every listing of persons a consultation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.auth.principal import is_system
from ore.auth.scope import principal_of
from ore.errors import OreError
from ore.store.watch_models import CportAssessment, WatchSubject
from ore.watch import access, cport


def find_subject(session: Session, person_ref: str, package: str | None = None) -> WatchSubject:
    """The watched person ``person_ref`` the session's user may see; one clear error if none or several."""
    who = principal_of(session)
    q = select(WatchSubject).where(WatchSubject.person_ref == person_ref, access.visible_subjects(who))
    if package:
        q = q.where(WatchSubject.package_ref == package)
    found = list(session.scalars(q))
    if not found:
        where = f" in package {package}" if package else ""
        raise OreError(f"no watched person {person_ref}{where}: only convicted or cautioned persons are watched "
                       "(ore watch list shows those you may see)")
    if len(found) > 1:
        raise OreError(f"person {person_ref} is in several packages ({', '.join(sorted(s.package_ref for s in found))})"
                       ": give --package")
    return found[0]


def set_manager(session: Session, person_ref: str, force: str, *, manager: str | None = None,
                package: str | None = None) -> WatchSubject:
    """Record the force (and optionally the name) of a watched person's offender manager: alerts go there."""
    who = principal_of(session)
    access.require(who, "manage", "record an offender manager")
    force = (force or "").strip().upper()
    if not force:
        raise OreError("give the offender manager's force code (--force)")
    subject = find_subject(session, person_ref, package)
    before = subject.force_code
    subject.manager_force, subject.manager, subject.force_code = force, (manager or "").strip() or None, force
    session.flush()
    record_for(session, action="watch.manager", category="alteration", objects=[person_ref],
               default_purpose="investigation", detail={"package": subject.package_ref, "force": force,
                                                         "was": before, "manager": subject.manager})
    return subject


ANSWERS = ("yes", "no", "unknown")


def record_cport(session: Session, person_ref: str, items: dict[str, Any], *, by: str | None = None,
                 note: str | None = None, package: str | None = None, at: datetime | None = None) -> cport.Score:
    """Record an offender manager's CPORT items for a convicted person; return the score they give.

    Every item must be answered (yes, no or unknown), so that an item left out by
    mistake is not read as unknown; CPORT is refused for a person not convicted.
    """
    who = principal_of(session)
    access.require(who, "cport", "record CPORT items")
    tool = cport.tool()
    if missing := [c for c in tool.codes if c not in items]:
        raise OreError(f"CPORT needs an answer (yes, no or unknown) for every item; missing: {', '.join(missing)}")
    values = {c: cport.item_value(items[c], c) for c in tool.codes}
    subject = find_subject(session, person_ref, package)
    if subject.case_status != "convicted":
        raise OreError(f"{person_ref} is {subject.case_status}, not convicted: CPORT was built and normed on men "
                       "convicted of child sexual exploitation material offences and is not scored for others")
    by = by if is_system(who) and by else who.username
    session.add(CportAssessment(subject_id=subject.id, assessed_by=by, assessed_at=at or datetime.now(UTC),
                                note=(note or "").strip() or None, **values))
    session.flush()
    result = cport.score(values)
    record_for(session, action="watch.cport", category="alteration", objects=[person_ref],
               default_purpose="investigation", user=by,
               detail={"package": subject.package_ref, "score": result.shown(), "unknown": list(result.missing)})
    return result


def latest_cport(session: Session, subject_ids: list[int]) -> dict[int, CportAssessment]:
    """The assessment of each subject recorded last (a new one replaces, never edits, the one before)."""
    if not subject_ids:
        return {}
    latest = (select(CportAssessment.subject_id, func.max(CportAssessment.id).label("id"))
              .where(CportAssessment.subject_id.in_(subject_ids)).group_by(CportAssessment.subject_id).subquery())
    rows = session.scalars(select(CportAssessment).join(latest, latest.c.id == CportAssessment.id))
    return {a.subject_id: a for a in rows}


def items_of(a: CportAssessment) -> dict[str, int | None]:
    return {c: getattr(a, c) for c in cport.tool().codes}


@dataclass
class Watched:
    subject: WatchSubject
    cport: cport.Score | None  # None: not assessed


def list_watched(session: Session, *, force: str | None = None, include_off: bool = False) -> list[Watched]:
    """The watched persons the user may see, with their latest CPORT score (a consultation)."""
    who = principal_of(session)
    access.require(who, "alerts", "list watched persons")
    q = select(WatchSubject).where(access.visible_subjects(who))
    if not include_off:
        q = q.where(WatchSubject.on_watch.is_(True))
    if force:
        q = q.where(WatchSubject.force_code == force)
    subjects = list(session.scalars(q.order_by(WatchSubject.force_code, WatchSubject.package_ref,
                                               WatchSubject.person_ref)))
    scores = latest_cport(session, [s.id for s in subjects])
    if not is_system(who) and subjects:
        record_for(session, action="watch.list", category="consultation", objects=[s.person_ref for s in subjects],
                   default_purpose="investigation", detail={"force": force} if force else None)
    return [Watched(s, cport.score(items_of(scores[s.id])) if s.id in scores else None) for s in subjects]
