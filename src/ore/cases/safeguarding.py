"""Safeguarding: children identified and safeguarded in a case, recorded as counts.

The first duty is to the children: the funnel reports how many were safeguarded.
A record holds counts, dates and the agency that acted, never a child's name: the
case store is not the place for the children's own records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.errors import OreError
from ore.store.models import Case, Safeguarding


@dataclass(frozen=True)
class SafeguardingTotals:
    records: int
    children_identified: int
    children_safeguarded: int


def record_safeguarding(
    session: Session, case: Case, *, identified: int, safeguarded: int, agency: str, by: str,
    identified_on: date | None = None, safeguarded_on: date | None = None, note: str | None = None,
) -> Safeguarding:
    """Record children identified and safeguarded against ``case``; refuses impossible counts.

    The signed-in user (if any) is the recorder and needs ``cases.safeguard`` on the case.
    """
    from ore.auth.principal import is_system
    from ore.auth.scope import principal_of
    from ore.cases.lifecycle import authorise

    authorise(session, "safeguard", case)
    who = principal_of(session)
    if not is_system(who):
        by = who.username
    if identified < 0 or safeguarded < 0:
        raise OreError("children identified and safeguarded are counts: they cannot be negative")
    if safeguarded > identified:
        raise OreError(f"{safeguarded} children safeguarded but only {identified} identified: "
                       "record the children identified too")
    if identified == 0:
        raise OreError("a safeguarding record needs at least one child identified")
    if not agency.strip():
        raise OreError("name the agency that safeguarded the children (e.g. the local authority)")
    if not by.strip():
        raise OreError("give the name of the person recording this")
    if case.sealed:
        raise OreError(f"{case.person.person_ref} is sealed: unseal before recording against the case")
    if identified_on and safeguarded_on and safeguarded_on < identified_on:
        raise OreError("children cannot be safeguarded before they were identified")
    row = Safeguarding(case_id=case.id, children_identified=identified, children_safeguarded=safeguarded,
                       agency=agency.strip(), identified_on=identified_on, safeguarded_on=safeguarded_on,
                       recorded_by=by.strip(), note=note)
    session.add(row)
    session.flush()
    record_for(session, action="cases.safeguard", category="alteration", objects=[case.person.person_ref],
               default_purpose="safeguarding", user=by.strip(),
               detail={"children_identified": identified, "children_safeguarded": safeguarded})
    return row


def safeguarding_totals(session: Session, case: Case) -> SafeguardingTotals:
    n, ident, safe = session.execute(
        select(func.count(Safeguarding.id), func.coalesce(func.sum(Safeguarding.children_identified), 0),
               func.coalesce(func.sum(Safeguarding.children_safeguarded), 0)).where(Safeguarding.case_id == case.id)
    ).one()
    return SafeguardingTotals(int(n), int(ident), int(safe))
