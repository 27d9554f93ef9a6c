"""Finding cases: by the person's reference, by band, force and status.

A person reference (``PER000123``, ``U00007``) is unique within a package, not
across packages: where it is ambiguous the caller names the package.

Force scoping happens here, in the one place every case query passes through:
``case_query(session)`` keeps to the cases the session's user may see
(``ore.auth.scope.visible_cases``). Another force's case, or a sealed one, answers
exactly as a missing one. Every view by a signed-in user (a case shown, or listed in
results) is an audit entry (consultation) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from ore.audit.chain import record_for
from ore.auth.principal import is_system
from ore.auth.scope import principal_of, visible_cases
from ore.errors import OreError
from ore.store.models import Case, HoldingLink, Package, Person, Recommendation, Record, Safeguarding, Transition


def case_query(session: Session) -> Select[tuple[Case]]:
    """Every case query starts here: the cases (with person and package) the session's user may see."""
    return (select(Case).join(Case.person).join(Person.package).options(joinedload(Case.person))
            .where(visible_cases(principal_of(session))))


def consulted(session: Session, action: str, refs: list[str], detail: dict[str, Any] | None = None) -> None:
    """Log that the session's user saw these persons (nothing for internal callers, who show no one)."""
    if not is_system(principal_of(session)):
        record_for(session, action=action, category="consultation", objects=refs, default_purpose="investigation",
                   detail=detail)


def find_case(session: Session, person_ref: str, package: str | None = None) -> Case:
    """The case of ``person_ref`` (in ``package`` where given); a clear error if none or several."""
    q = case_query(session).where(Person.person_ref == person_ref)
    if package:
        q = q.where(Package.package_ref == package)
    found = list(session.scalars(q))
    if not found:
        where = f" in package {package}" if package else ""
        raise OreError(f"no case for person {person_ref}{where}: import the triage first (ore cases import OUTDIR)")
    if len(found) > 1:
        pkgs = ", ".join(sorted(c.person.package.package_ref for c in found))
        raise OreError(f"person {person_ref} is in several packages ({pkgs}): give --package")
    return found[0]


def list_cases(session: Session, *, band: str | None = None, force: str | None = None, status: str | None = None,
               package: str | None = None, limit: int | None = None) -> list[Case]:
    """Cases filtered by band (confirmed, else recommended), force (disseminated, else allocated) and status."""
    q = case_query(session)
    if band:
        q = q.where((Case.band == band) | (Case.band.is_(None) & (Case.recommended_band == band)))
    if force:
        q = q.where((Case.force_code == force) | (Case.force_code.is_(None) & (Person.force_code == force)))
    if status:
        q = q.where(Case.status == status)
    if package:
        q = q.where(Package.package_ref == package)
    q = q.order_by(Package.package_ref, Person.person_ref)
    if limit:
        q = q.limit(limit)
    found = list(session.scalars(q))
    consulted(session, "cases.list", [c.person.person_ref for c in found],
              {"filters": {k: v for k, v in (("band", band), ("force", force), ("status", status),
                                             ("package", package)) if v}})
    return found


@dataclass
class CaseView:
    case: Case
    recommendations: list[Recommendation]
    transitions: list[Transition]
    links: list[HoldingLink]
    records: list[Record]
    safeguarding: list[Safeguarding]

    def as_dict(self) -> dict[str, Any]:
        c, p = self.case, self.case.person
        return {
            "person": p.person_ref, "package": p.package.package_ref, "kind": p.kind, "name": p.display_name,
            "date_of_birth": p.date_of_birth, "postcode": p.postcode, "allocated_force": p.force_code,
            "evidence_grade": p.evidence_grade, "likely_victim": p.likely_victim, "status": c.status,
            "s38_category": c.s38_category, "recommended_band": c.recommended_band, "band": c.band,
            "band_confirmed": c.band_confirmed, "force": c.force_code, "sealed": c.sealed,
            "disseminated_at": c.disseminated_at, "due_at": c.due_at, "version": c.version,
        }


def show_case(session: Session, person_ref: str, package: str | None = None) -> CaseView:
    case = find_case(session, person_ref, package)
    pid = case.person_id
    consulted(session, "cases.show", [case.person.person_ref], {"package": case.person.package.package_ref})
    return CaseView(
        case,
        list(session.scalars(select(Recommendation).where(Recommendation.person_id == pid).order_by(Recommendation.id))),
        list(session.scalars(select(Transition).where(Transition.case_id == case.id).order_by(Transition.seq))),
        list(session.scalars(select(HoldingLink).where(HoldingLink.person_id == pid, HoldingLink.withdrawn_at.is_(None))
                             .order_by(HoldingLink.holding, HoldingLink.ref))),
        list(session.scalars(select(Record).where((Record.person_id == pid) | (Record.subject_id == pid))
                             .order_by(Record.transaction_time, Record.record_ref))),
        list(session.scalars(select(Safeguarding).where(Safeguarding.case_id == case.id).order_by(Safeguarding.id))),
    )
