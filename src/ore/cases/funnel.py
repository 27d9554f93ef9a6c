"""The funnel: how many people the operation identified, and what became of them.

Counted in SQL from the case rows, never from a separate tally: a case counts at a
stage if it ever reached it (its milestone time is set), so a person arrested and
later eliminated still counts as arrested, and as eliminated. Sealed cases are
counted (their numbers stay; their names are kept out of every list). A user of one force
counts only the cases disseminated to it (``ore.auth.scope``).

"Identified" counts every case: each person the triage named and each unidentified
subject (a subject is worked, and may be arrested, like anyone else). A person a later
re-triage withdrew keeps their case and is still counted: what was done to them happened.

Also: children identified and safeguarded (sums over the safeguarding records), and
per band the median time from dissemination to first action (arrest, interview,
no further action or elimination), the measure of whether bands' deadlines are met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Float, and_, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from ore.auth.scope import principal_of, visible_cases
from ore.store.models import Case, Operation, Person, Safeguarding

STAGES: tuple[tuple[str, str], ...] = (
    ("identified", "opened_at"),
    ("triaged", "triaged_at"),
    ("disseminated", "disseminated_at"),
    ("arrested", "arrested_at"),
    ("interviewed", "interviewed_at"),
    ("charged", "charged_at"),
    ("cautioned", "cautioned_at"),
    ("no_further_action", "nfa_at"),
    ("released", "released_at"),
    ("convicted", "convicted_at"),
    ("acquitted", "acquitted_at"),
    ("eliminated", "eliminated_at"),
)
CHILDREN = ("children_identified", "children_safeguarded")
COLUMNS = tuple(name for name, _ in STAGES) + CHILDREN
GROUPINGS = ("force", "band")


class seconds_between(FunctionElement[float]):  # noqa: N801 - reads as SQL
    """Seconds from the first argument to the second, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _sqlite_seconds(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 86400.0)"


@compiles(seconds_between)
def _default_seconds(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@dataclass
class FunnelRow:
    group: str
    counts: dict[str, int]


@dataclass
class Funnel:
    by: str | None
    total: FunnelRow
    rows: list[FunnelRow] = field(default_factory=list)
    median_to_first_action: dict[str, timedelta | None] = field(default_factory=dict)
    acted: dict[str, int] = field(default_factory=dict)

    def inconsistencies(self) -> list[str]:
        """Ways the funnel fails to add up (empty when it is right); the tests hold it to this."""
        bad = []
        for row in [self.total, *self.rows]:
            c = row.counts
            if c["convicted"] + c["acquitted"] > c["charged"]:
                bad.append(f"{row.group}: convicted + acquitted exceed charged")
            if c["charged"] + c["cautioned"] > c["arrested"] + c["interviewed"]:
                bad.append(f"{row.group}: charged + cautioned exceed those arrested or interviewed")
            if c["arrested"] > c["disseminated"] or c["disseminated"] > c["triaged"] or c["triaged"] > c["identified"]:
                bad.append(f"{row.group}: a later stage exceeds an earlier one")
            if c["children_safeguarded"] > c["children_identified"]:
                bad.append(f"{row.group}: more children safeguarded than identified")
        if self.rows:
            for col in COLUMNS:
                if sum(r.counts[col] for r in self.rows) != self.total.counts[col]:
                    bad.append(f"{col}: the groups do not add up to the total")
        return bad


def _group_key(by: str | None) -> ColumnElement[Any]:
    if by is None:
        return literal("all")
    if by == "force":
        return func.coalesce(Case.force_code, Person.force_code, "unallocated")
    if by == "band":
        return func.coalesce(Case.band, Case.recommended_band, "none")
    raise ValueError(f"funnel by {by!r}: use one of {', '.join(GROUPINGS)}")


def _counts(session: Session, by: str | None, operation: str | None) -> list[FunnelRow]:
    kids = (
        select(Safeguarding.case_id, func.sum(Safeguarding.children_identified).label("ci"),
               func.sum(Safeguarding.children_safeguarded).label("cs"))
        .group_by(Safeguarding.case_id).subquery()
    )
    key = _group_key(by).label("grp")
    cols = [func.count(getattr(Case, col)).label(name) for name, col in STAGES]
    q = (
        select(key, *cols, func.coalesce(func.sum(kids.c.ci), 0), func.coalesce(func.sum(kids.c.cs), 0))
        .select_from(Case).join(Person, Person.id == Case.person_id)
        .outerjoin(kids, kids.c.case_id == Case.id)
        .group_by(key).order_by(key)
    )
    q = q.where(visible_cases(principal_of(session), counting=True))
    if operation:
        q = q.join(Operation, Operation.id == Case.operation_id).where(Operation.name == operation)
    return [FunnelRow(str(r[0]), {c: int(v) for c, v in zip(COLUMNS, r[1:], strict=True)}) for r in session.execute(q)]


def _medians(session: Session, operation: str | None) -> tuple[dict[str, timedelta | None], dict[str, int]]:
    band = func.coalesce(Case.band, Case.recommended_band, "none")
    secs = seconds_between(Case.disseminated_at, Case.first_action_at)
    base = select(band.label("band"), secs.label("secs")).where(
        and_(Case.disseminated_at.is_not(None), Case.first_action_at.is_not(None)),
        visible_cases(principal_of(session), counting=True))
    if operation:
        base = base.join(Operation, Operation.id == Case.operation_id).where(Operation.name == operation)
    d = base.subquery()
    ranked = select(
        d.c.band, d.c.secs,
        func.row_number().over(partition_by=d.c.band, order_by=d.c.secs).label("rn"),
        func.count().over(partition_by=d.c.band).label("cnt"),
    ).subquery()
    q = (
        select(ranked.c.band, func.avg(ranked.c.secs), func.max(ranked.c.cnt))
        .where(ranked.c.rn.in_([(ranked.c.cnt + 1) / 2, (ranked.c.cnt + 2) / 2]))
        .group_by(ranked.c.band).order_by(ranked.c.band)
    )
    medians, acted = {}, {}
    for b, avg, cnt in session.execute(q):
        medians[str(b)] = None if avg is None else timedelta(seconds=round(float(avg)))
        acted[str(b)] = int(cnt)
    return medians, acted


def funnel(session: Session, *, by: str | None = None, operation: str | None = None) -> Funnel:
    """The funnel of every case (or one operation's), in total and by force or band."""
    total = _counts(session, None, operation)
    total_row = total[0] if total else FunnelRow("all", dict.fromkeys(COLUMNS, 0))
    total_row.group = "all"
    rows = _counts(session, by, operation) if by else []
    medians, acted = _medians(session, operation)
    return Funnel(by, total_row, rows, medians, acted)
