"""The views of cases a reader asks for: the queue, a person's page, the link chart, the dashboard.

Every read of cases or persons starts from ``ore.cases.queries.case_query`` (or a function
of ``ore.cases`` built on it), so force scoping and sealing stay decided in one place;
these functions only add filters, sorting and paging in SQL, and log each person shown
(``consulted``) in the caller's own transaction. Nothing here is web-specific: the
functions take a store session and return plain data, for the web pages, the API or any
other reader.

The raw identity fields a record carries (name typed, email, account, IP) live only in
the workspace's DuckDB ``leads`` table. They are read for record references already
obtained through ``case_query``, never by searching DuckDB for persons, and with a short
wait for the workspace lock: a triage running holds it, and a page must not hang on it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from ore.auth.policy import load_policy
from ore.auth.principal import Principal
from ore.auth.scope import principal_of
from ore.cases import TRANSITIONS, funnel, overdue, show_case
from ore.cases.lifecycle import ACTIONABLE_BANDS, BANDS, ELIMINATION_GROUNDS
from ore.cases.queries import CaseView, case_query, consulted
from ore.config import get_settings
from ore.errors import OreError
from ore.store.models import Case, Package, Person, Record
from ore.workspace import Workspace

SORTS: dict[str, Any] = {
    "band": func.coalesce(Case.band, Case.recommended_band, "none"),
    "person": Person.person_ref,
    "name": Person.display_name,
    "grade": Person.evidence_grade,
    "force": func.coalesce(Case.force_code, Person.force_code),
    "status": Case.status,
    "due": Case.due_at,
    "records": Person.record_count,
}
GRADES = ("A", "B", "C")
MAX_PER_PAGE = 200
POSTCODE = re.compile(r"^[A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2}$|^[A-Za-z]{1,2}\d[A-Za-z\d]?$")
SOURCE_LOCK_WAIT = 2.0  # seconds a page waits for the workspace (a triage may hold it for minutes)


# --- the queue --------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    band: str | None = None
    force: str | None = None
    grade: str | None = None
    status: str | None = None
    package: str | None = None
    q: str | None = None
    sort: str = "band"
    desc: bool = False
    page: int = 1
    per_page: int = 50

    def check(self) -> None:
        from ore.cases import STATES

        if self.band and self.band not in BANDS:
            raise OreError(f"band {self.band!r}: one of {', '.join(BANDS)}")
        if self.grade and self.grade not in GRADES:
            raise OreError(f"grade {self.grade!r}: one of {', '.join(GRADES)}")
        if self.status and self.status not in STATES:
            raise OreError(f"status {self.status!r}: one of {', '.join(STATES)}")
        if self.sort not in SORTS:
            raise OreError(f"sort {self.sort!r}: one of {', '.join(SORTS)}")
        if self.page < 1 or not 1 <= self.per_page <= MAX_PER_PAGE:
            raise OreError(f"page from 1, per_page from 1 to {MAX_PER_PAGE}")

    def as_query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", False)}


@dataclass
class QueueRow:
    person_ref: str
    package: str
    kind: str
    name: str | None
    band: str
    band_confirmed: bool
    grade: str | None
    likely_victim: bool
    force: str | None
    status: str
    due_at: datetime | None
    records: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    filters: QueueFilters
    note: str | None = None  # e.g. the email search could not reach the workspace

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filters.per_page))


def _search(q: Select[Any], text: str, ws: Workspace | None) -> tuple[Select[Any], str | None]:
    """Narrow the queue by a name, email, postcode, last four card digits or a person reference."""
    text = text.strip()
    if re.fullmatch(r"\d{4}", text):
        card = exists().where(Record.card_last4 == text,
                              or_(Record.person_id == Person.id, Record.subject_id == Person.id))
        return q.where(card), None
    if re.fullmatch(r"(PER|U)\d+", text, re.IGNORECASE):
        return q.where(Person.person_ref == text.upper()), None
    if "@" in text:
        refs, note = _records_with_email(ws, text)
        conds = [Person.identifiers.ilike(f"%email:{text}%")]  # unidentified subjects list their emails
        if refs:
            conds.append(exists().where(Record.record_ref.in_(refs), Record.package_id == Person.package_id,
                                        or_(Record.person_id == Person.id, Record.subject_id == Person.id)))
        return q.where(or_(*conds)), note
    if POSTCODE.fullmatch(text):
        compact = text.replace(" ", "").upper()
        return q.where(func.replace(func.upper(Person.postcode), " ", "").like(f"{compact}%")), None
    return q.where(Person.display_name.ilike(f"%{text}%")), None


def _records_with_email(ws: Workspace | None, email: str) -> tuple[list[str], str | None]:
    """Record references whose typed email is ``email`` (bulk table); the caller scopes the persons."""
    if ws is None or not ws.duckdb_path.exists():
        return [], None
    try:
        with _quick(ws).duckdb(read_only=True) as con:
            rows = con.execute("SELECT DISTINCT record_id FROM leads WHERE lower(email) = lower(?) LIMIT 5000",
                               [email]).fetchall()
    except OreError:
        return [], "the workspace is busy (a triage is running): emails of identified persons were not searched"
    return [r[0] for r in rows], None


def _quick(ws: Workspace) -> Workspace:
    """The same workspace with a short lock wait, for reads a page can do without."""
    return Workspace.open(ws.root, get_settings(lock_timeout=SOURCE_LOCK_WAIT, database_url=ws.settings.database_url))


def queue(session: Session, f: QueueFilters, ws: Workspace | None = None) -> QueuePage:
    """One page of the queue, filtered, searched, sorted and paged in SQL; each person shown is logged."""
    f.check()
    q = case_query(session)
    if f.band:
        q = q.where(func.coalesce(Case.band, Case.recommended_band, "none") == f.band)
    if f.force:
        q = q.where(func.coalesce(Case.force_code, Person.force_code) == f.force.upper())
    if f.grade:
        q = q.where(Person.evidence_grade == f.grade)
    if f.status:
        q = q.where(Case.status == f.status)
    if f.package:
        q = q.where(Package.package_ref == f.package)
    note = None
    if f.q and f.q.strip():
        q, note = _search(q, f.q, ws)
    total = session.scalar(select(func.count()).select_from(q.with_only_columns(Case.id).subquery())) or 0
    key = SORTS[f.sort]
    order = [key.desc() if f.desc else key.asc(), Person.person_ref, Package.package_ref]
    if f.sort in ("due", "name", "grade", "force"):  # nulls last on every backend
        order.insert(0, key.is_(None))
    cases = list(session.scalars(q.order_by(*order).limit(f.per_page).offset((f.page - 1) * f.per_page)))
    rows = [QueueRow(c.person.person_ref, c.person.package.package_ref, c.person.kind, c.person.display_name,
                     c.band or c.recommended_band or "none", c.band_confirmed, c.person.evidence_grade,
                     c.person.likely_victim, c.force_code or c.person.force_code, c.status, c.due_at,
                     c.person.record_count) for c in cases]
    consulted(session, "web.queue", [r.person_ref for r in rows], {"filters": f.as_query(), "total": total})
    return QueuePage(rows, total, f, note)


# --- a person's page ----------------------------------------------------------------------------


@dataclass
class Action:
    """A step this user may take on this case now, as the lifecycle and the roles policy allow."""

    step: str
    label: str
    needs: tuple[str, ...] = ()  # extra fields the form asks for


STEP_LABELS = {
    "triaged": "Confirm or set the band", "accepted": "Accept the case", "under_investigation": "Open investigation",
    "arrested": "Record arrest", "interviewed": "Record interview", "charged": "Record charge",
    "cautioned": "Record caution", "no_further_action": "No further action", "released": "Released pending decision",
    "convicted": "Record conviction", "acquitted": "Record acquittal", "eliminated": "Eliminate (wrongly identified)",
}


def actions_for(who: Principal, case: Case) -> list[Action]:
    """The steps open to ``who`` on ``case``: allowed by the lifecycle table and by the user's roles."""
    if case.sealed:
        return []
    policy = load_policy()
    out = []
    for step in TRANSITIONS.get(case.status, ()):
        if step == "disseminated":
            continue  # a dissemination is a signed package: see ``can_disseminate``
        if not who.can(policy.step_permission(step)):
            continue
        needs: tuple[str, ...] = ()
        if step == "triaged":
            needs = ("band",)
        elif step == "eliminated":
            needs = ("ground",)
        elif step == "arrested" and case.person.evidence_grade == "C":
            needs = ("override",)
        out.append(Action(step, STEP_LABELS.get(step, step), needs))
    return out


def can_disseminate(who: Principal, case: Case) -> bool:
    return (not case.sealed and who.can("cases.disseminate") and case.status == "triaged"
            and case.band_confirmed and case.band in ACTIONABLE_BANDS)


@dataclass
class PersonPage:
    view: CaseView
    sentences: list[str]
    reason_codes: list[str]
    grade_reasons: list[str]
    identifiers: list[tuple[str, str]]
    records: list[dict[str, Any]]
    holdings: list[dict[str, Any]]
    deconfliction: list[dict[str, Any]]
    actions: list[Action]
    disseminate: bool
    safeguard: bool
    seal: bool
    children: tuple[int, int]
    bands: tuple[str, ...] = BANDS
    grounds: tuple[str, ...] = tuple(ELIMINATION_GROUNDS)

    def as_dict(self) -> dict[str, Any]:
        v = self.view
        return {
            **{k: _plain(x) for k, x in v.as_dict().items()},
            "reasons": {"codes": self.reason_codes, "sentences": self.sentences},
            "grade_reasons": self.grade_reasons,
            "identifiers": [{"kind": k, "value": x} for k, x in self.identifiers],
            "records": [{k: _plain(x) for k, x in r.items()} for r in self.records],
            "holdings": self.holdings, "deconfliction": self.deconfliction,
            "timeline": [{"seq": t.seq, "at": _plain(t.at), "action": t.action, "from": t.from_status,
                          "to": t.to_status, "by": t.actor, "reason": t.reason, "band": t.band,
                          "force": t.force_code, "override_by": t.override_by} for t in v.transitions],
            "safeguarding": [{"children_identified": g.children_identified,
                              "children_safeguarded": g.children_safeguarded, "agency": g.agency,
                              "identified_on": _plain(g.identified_on), "safeguarded_on": _plain(g.safeguarded_on),
                              "recorded_by": g.recorded_by} for g in v.safeguarding],
            "actions": [a.step for a in self.actions] + (["disseminated"] if self.disseminate else [])
                       + (["safeguard"] if self.safeguard else []) + (["seal"] if self.seal else []),
        }


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat(timespec="seconds")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _identifiers(text: str | None) -> list[tuple[str, str]]:
    out = []
    for part in (text or "").split(";"):
        kind, _, value = part.partition(":")
        if value:
            out.append((kind.strip(), value.strip()))
    return out


def person_page(session: Session, person_ref: str, package: str | None = None) -> PersonPage:
    """Everything the person page shows; ``show_case`` finds (scoped) and logs the view."""
    v = show_case(session, person_ref, package)
    who = principal_of(session)
    c, p = v.case, v.case.person
    rec = v.recommendations[-1] if v.recommendations else None
    records = []
    for r in v.records:
        records.append({"record": r.record_ref, "time": r.transaction_time, "merchant": r.merchant,
                        "product": r.product, "category": r.product_category, "amount": r.amount,
                        "currency": r.currency, "status": r.status, "card": r.card_masked,
                        "fraud_suspected": r.fraud_suspected, "fraud_score": r.fraud_score,
                        "subject": r.subject_id == p.id and r.person_id != p.id,
                        "indicators": json.loads(r.indicators or "[]")})
    links = [{"holding": k.holding, "ref": k.ref, "probability": round(k.match_probability, 4),
              "detail": k.detail} for k in v.links]
    kids = (sum(g.children_identified for g in v.safeguarding), sum(g.children_safeguarded for g in v.safeguarding))
    return PersonPage(
        v, json.loads(rec.sentences or "[]") if rec else [], [x for x in (rec.reasons if rec else "").split(";") if x],
        [x for x in (p.grade_reasons or "").split(";") if x], _identifiers(p.identifiers), records,
        [k for k in links if k["holding"] != "open_cases"], [k for k in links if k["holding"] == "open_cases"],
        actions_for(who, c), can_disseminate(who, c),
        not c.sealed and who.can("cases.safeguard") and c.status not in ("identified", "triaged"),
        not c.sealed and who.can("cases.seal"), kids,
    )


def record_sources(ws: Workspace, record_refs: list[str], package: str) -> tuple[list[dict[str, Any]], str | None]:
    """The identity each record gave (name, date of birth, email, account, postcode, IP): the sources.

    ``record_refs`` must come from a scoped case view; this only reads their rows.
    """
    if not record_refs or not ws.duckdb_path.exists():
        return [], None
    try:
        with _quick(ws).duckdb(read_only=True) as con:
            rows = con.execute(
                """SELECT record_id, cardholder_name, first_name, last_name, date_of_birth, email, username,
                          postcode, ip_address, ip_country, card_masked
                   FROM leads WHERE package_id = ? AND list_contains(?, record_id) ORDER BY record_id""",
                [package, record_refs]).fetchall()
    except OreError:
        return [], "the workspace is busy (a triage is running): the records' identity fields are not shown now"
    cols = ("record", "cardholder", "first_name", "last_name", "date_of_birth", "email", "account", "postcode",
            "ip", "ip_country", "card")
    return [dict(zip(cols, r, strict=True)) for r in rows], None


# --- the link chart -------------------------------------------------------------------------------


@dataclass
class Graph:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    def node(self, nid: str, label: str, kind: str) -> None:
        if not any(n["data"]["id"] == nid for n in self.nodes):
            self.nodes.append({"data": {"id": nid, "label": label, "kind": kind}})

    def edge(self, a: str, b: str, label: str = "") -> None:
        eid = f"{a}->{b}"
        if not any(e["data"]["id"] == eid for e in self.edges):
            self.edges.append({"data": {"id": eid, "source": a, "target": b, "label": label}})

    def as_dict(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "edges": self.edges, "note": self.note}


MAX_GRAPH_NODES = 300


def link_chart(session: Session, ws: Workspace | None, person_ref: str, package: str | None = None) -> Graph:
    """The person, their cards, emails, IPs and accounts, and the (visible) persons and subjects sharing a card."""
    from ore.cases import find_case

    case = find_case(session, person_ref, package)
    p = case.person
    g = Graph()
    me = f"person:{p.id}"
    g.node(me, f"{p.person_ref} {p.display_name or ''}".strip(), p.kind)
    mine = list(session.execute(select(Record.record_ref, Record.card_token, Record.card_masked).where(
        or_(Record.person_id == p.id, Record.subject_id == p.id), Record.withdrawn_at.is_(None))))
    tokens = {}
    for _, token, masked in mine:
        if token:
            tokens[token] = masked
            g.node(f"card:{token[:16]}", masked or "card", "card")
            g.edge(me, f"card:{token[:16]}", "paid with")
    # Who else used the same cards: only persons this user may see (case_query), by person id.
    others = list(session.execute(select(Record.card_token, Record.person_id, Record.subject_id).where(
        Record.card_token.in_(list(tokens)[:1000]), Record.withdrawn_at.is_(None))) if tokens else [])
    ids = {pid for _, a, b in others for pid in (a, b) if pid and pid != p.id}
    visible = {c.person_id: c.person for c in session.scalars(case_query(session).where(Case.person_id.in_(ids)))} \
        if ids else {}
    for token, a, b in others:
        for pid in (a, b):
            if pid in visible and len(g.nodes) < MAX_GRAPH_NODES:
                o = visible[pid]
                g.node(f"person:{pid}", f"{o.person_ref} {o.display_name or ''}".strip(), o.kind)
                g.edge(f"person:{pid}", f"card:{token[:16]}", "paid with")
    if ws is not None:
        sources, g.note = record_sources(ws, [r for r, _, _ in mine], p.package.package_ref)
        for s in sources:
            for kind, value in (("email", s["email"]), ("ip", s["ip"]), ("account", s["account"])):
                if value and len(g.nodes) < MAX_GRAPH_NODES:
                    g.node(f"{kind}:{value}", value, kind)
                    g.edge(me, f"{kind}:{value}", "used")
    for kind, value in _identifiers(p.identifiers):
        if kind in ("email", "ip", "account") and len(g.nodes) < MAX_GRAPH_NODES:
            g.node(f"{kind}:{value}", value, kind)
            g.edge(me, f"{kind}:{value}", "used")
    consulted(session, "web.link_chart", [p.person_ref, *sorted(o.person_ref for o in visible.values())],
              {"package": p.package.package_ref})
    return g


# --- the dashboard --------------------------------------------------------------------------------


@dataclass
class Dashboard:
    funnel: Any
    by_band: Any
    by_force: Any
    overdue: list[Any]
    grades: dict[str, int]
    likely_victims: int
    fraud_records: int
    persons: int


def dashboard(session: Session, *, now: datetime | None = None) -> Dashboard:
    """The funnel, counts by band and force, overdue P1/P2 cases, and the fraud picture (scoped counts)."""
    f = funnel(session)
    by_band = funnel(session, by="band")
    by_force = funnel(session, by="force")
    late = [o for o in overdue(session, now=now) if o.band in ("P1", "P2")]
    q = case_query(session)
    grades: Counter[str] = Counter()
    victims = persons = 0
    sub = q.with_only_columns(Person.id.label("pid"), Person.evidence_grade.label("grade"),
                              Person.likely_victim.label("victim")).subquery()
    for grade, victim, n in session.execute(select(sub.c.grade, sub.c.victim, func.count()).group_by(sub.c.grade,
                                                                                                      sub.c.victim)):
        grades[grade or "-"] += n
        victims += n if victim else 0
        persons += n
    fraud = session.scalar(select(func.count(Record.id)).where(Record.fraud_suspected.is_(True),
                                                               Record.person_id.in_(select(sub.c.pid)))) or 0
    return Dashboard(f, by_band, by_force, late, dict(sorted(grades.items())), victims, fraud, persons)
