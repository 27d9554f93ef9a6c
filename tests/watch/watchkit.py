"""A synthetic operation with outcomes, and later payment feeds with known answers, for the watch tests.

``prepare`` imports a triaged scenario (``casekit.triage_scenario``) and moves persons through
the public case functions: some convicted, one cautioned, one convicted and later sealed,
some eliminated (which seals them), the rest left open. Persons are chosen so that no
card, email or account name of one group is also another group's, and none is on a record
triage judged card fraud: the right answer is then known without running the watch.

``later_feed`` writes the feed the issue describes: convicted persons' cards and emails
back (at flagged and other merchants), the cautioned person's account name, sealed and
eliminated persons' cards, new people at flagged merchants, unrelated purchases, a bad
row; and returns what must come of it.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from casekit import T0, Triaged
from sqlalchemy import select

from ore.cases import find_case, import_triage, seal, transition
from ore.store import Store
from ore.store.models import Case, Package, Person, Record

TO_CONVICTED = ["triaged", "disseminated", "accepted", "under_investigation", "arrested", "charged", "convicted"]
TO_CAUTIONED = ["triaged", "disseminated", "accepted", "under_investigation", "arrested", "cautioned"]
FEED_HEADER = ["transaction_time", "merchant", "product", "amount", "currency", "card_number", "email", "username",
               "ip_address"]
FLAGGED_MERCHANT = "KEYZ*AV SERVICES"  # the synthetic packages' merchant, retyped as processors do
OTHER_MERCHANT = "CORNER SHOP LTD"


@dataclass
class Known:
    """A person of the scenario as the test knows them: reference, force and clear identifiers."""

    ref: str
    force: str
    cards: set[str]  # clear numbers, from the scenario's leads.csv
    emails: set[str]
    usernames: set[str]


@dataclass
class Operation:
    convicted: list[Known]
    cautioned: list[Known]
    sealed: list[Known]  # convicted, then sealed
    eliminated: list[Known]
    package: str


@dataclass
class Expected:
    alerts: dict[str, set[tuple[int, str]]] = field(default_factory=dict)  # person -> {(line, matched_on)}
    leads: set[int] = field(default_factory=set)  # lines
    sealed_lines: set[int] = field(default_factory=set)
    bad_lines: set[int] = field(default_factory=set)


def _scenario_leads(t: Triaged) -> dict[str, dict[str, str]]:
    with (t.scenario / "package" / "leads.csv").open(newline="", encoding="utf-8") as f:
        return {r["record_id"]: r for r in csv.DictReader(f)}


def _card(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def candidates(store: Store, t: Triaged) -> list[Known]:
    """Identified persons with an actionable band, a force and only own-use records, each of whose cards,
    emails and account names is on no one else's record (quarantined rows included)."""
    raw = _scenario_leads(t)
    with store.session() as s:
        people = {pid: (ref, force) for pid, ref, force in s.execute(
            select(Person.id, Person.person_ref, Person.force_code).join(Case, Case.person_id == Person.id)
            .where(Person.kind == "identified", Person.force_code.is_not(None),
                   Person.evidence_grade.in_(["A", "B"]), Case.recommended_band.in_(["P1", "P2", "P3", "P4"])))}
        records = s.execute(select(Record.record_ref, Record.person_id, Record.subject_id,
                                   Record.fraud_suspected)).all()
    owner = {rid: pid or sid for rid, pid, sid, _ in records}
    fraud = {pid for _, pid, _, suspected in records if suspected}
    owners: dict[str, set[Any]] = {}
    for rid, r in raw.items():
        for v in (_card(r["card_number"]), r["email"].strip().lower(), r["username"].strip().lower()):
            if v:
                owners.setdefault(v, set()).add(owner.get(rid, f"quarantined {rid}"))
    found: dict[int, Known] = {}
    for rid, pid, _, _ in records:
        if pid not in people:
            continue
        r = raw[rid]
        p = found.setdefault(pid, Known(people[pid][0], people[pid][1], set(), set(), set()))
        p.cards.add(_card(r["card_number"]))
        if r["email"].strip():
            p.emails.add(r["email"].strip())
        if r["username"].strip():
            p.usernames.add(r["username"].strip())
    out = []
    for pid, p in sorted(found.items(), key=lambda kv: kv[1].ref):
        values = p.cards | {e.lower() for e in p.emails} | {u.lower() for u in p.usernames}
        if pid not in fraud and p.emails and p.usernames and all(owners[v] == {pid} for v in values):
            out.append(p)
    return out


def _walk(s: Any, ref: str, steps: list[str], start_day: int = 0) -> None:
    case = find_case(s, ref)
    for i, to in enumerate(steps):
        kw: dict[str, Any] = {"band": case.recommended_band} if to == "triaged" else {}
        transition(s, case, to, by="sgt.jones", reason=f"step {to}", at=T0 + timedelta(days=start_day + i), **kw)


def prepare(store: Store, t: Triaged, *, convicted: int = 4) -> Operation:
    """Import the triage and give outcomes: convicted, cautioned, convicted-then-sealed, eliminated."""
    import_triage(store, t.ws, t.out, actor="analyst")
    people = candidates(store, t)
    assert len(people) >= convicted + 5, f"scenario has too few clean persons ({len(people)})"
    conv, caut, sealed, elim = people[:convicted], people[convicted:convicted + 1], \
        people[convicted + 1:convicted + 2], people[convicted + 2:convicted + 4]
    with store.session() as s:
        for p in conv + sealed:
            _walk(s, p.ref, TO_CONVICTED)
        for p in caut:
            _walk(s, p.ref, TO_CAUTIONED)
        for p in sealed:
            seal(s, find_case(s, p.ref), by="sgt.jones", reason="wrongly linked after conviction review",
                 at=T0 + timedelta(days=30))
        for p in elim:
            transition(s, find_case(s, p.ref), "eliminated", by="sgt.jones", reason="card fraud victim",
                       ground="card_fraud_victim", at=T0)
        pkg = s.scalar(select(Package.package_ref))
    return Operation(conv, caut, sealed, elim, pkg)


def luhn_card(rng: random.Random, prefix: str = "4929") -> str:
    """A Luhn-valid 16-digit number (callers skip any already in use)."""
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(prefix)))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def plus_tagged(email: str) -> str:
    """The same mailbox as typed differently: upper case and a +tag (the watch must still see it)."""
    local, _, domain = email.partition("@")
    return f"{local.upper()}+again@{domain.upper()}"


def later_feed(path: Path, op: Operation, *, seed: int = 7, known_cards: set[str] | None = None,
               extra: list[dict[str, str]] | None = None) -> Expected:
    """Write the later feed and return the alerts and leads it must give."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    exp = Expected()
    known = set(known_cards or ())

    def fresh() -> str:
        while (c := luhn_card(rng)) in known:
            pass
        known.add(c)
        return c

    def add(row: dict[str, str]) -> int:
        rows.append({k: row.get(k, "") for k in FEED_HEADER})
        return len(rows) + 1  # the header is line 1

    day = T0 + timedelta(days=800)

    def when(i: int) -> str:
        return (day + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S")

    for i, p in enumerate(op.convicted):
        card = sorted(p.cards)[0]
        # the old card, at a shop that is not flagged: an alert, not a lead
        line = add({"transaction_time": when(i), "merchant": OTHER_MERCHANT, "product": "GROCERIES", "amount": "12.50",
                    "currency": "GBP", "card_number": card, "email": f"new{i}@mail.example",
                    "username": f"fresh{i}", "ip_address": "81.2.69.142"})
        exp.alerts.setdefault(p.ref, set()).add((line, "card"))
        if i % 2 == 0:
            # a new card, but the old email (typed differently) at the flagged merchant: an alert and a lead
            line = add({"transaction_time": when(100 + i), "merchant": FLAGGED_MERCHANT, "product": "CHILD-SITE-01",
                        "amount": "29.95", "currency": "USD", "card_number": fresh(),
                        "email": plus_tagged(sorted(p.emails)[0]),
                        "username": f"other{i}", "ip_address": "81.2.69.143"})
            exp.alerts[p.ref].add((line, "email"))
            exp.leads.add(line)
    for i, p in enumerate(op.cautioned):
        line = add({"transaction_time": when(200 + i), "merchant": FLAGGED_MERCHANT, "product": "ADULT-AV-PASS",
                    "amount": "9.95", "currency": "USD", "card_number": fresh(), "email": f"c{i}@mail.example",
                    "username": sorted(p.usernames)[0].upper(), "ip_address": "81.2.69.144"})
        exp.alerts.setdefault(p.ref, set()).add((line, "username"))
        exp.leads.add(line)
    for i, p in enumerate(op.sealed + op.eliminated):
        card = sorted(p.cards)[0]
        line = add({"transaction_time": when(300 + i), "merchant": OTHER_MERCHANT, "product": "GROCERIES",
                    "amount": "5.00", "currency": "GBP", "card_number": card, "email": sorted(p.emails)[0],
                    "username": sorted(p.usernames)[0], "ip_address": "81.2.69.145"})
        exp.sealed_lines.add(line)
        line = add({"transaction_time": when(310 + i), "merchant": FLAGGED_MERCHANT, "product": "CHILD-SITE-02",
                    "amount": "29.95", "currency": "USD", "card_number": card, "email": "", "username": "",
                    "ip_address": "81.2.69.146"})
        exp.sealed_lines.add(line)
        exp.leads.add(line)  # a purchase from a flagged merchant is a lead, whoever's card; it names no case
    for i in range(5):  # new people at flagged merchants and products
        line = add({"transaction_time": when(400 + i), "merchant": FLAGGED_MERCHANT if i < 3 else "NEW BILLER",
                    "product": "CHILD-SITE-03", "amount": "39.95", "currency": "USD", "card_number": fresh(),
                    "email": f"buyer{i}@new.example", "username": f"buyer{i}", "ip_address": f"82.1.1.{i + 1}"})
        exp.leads.add(line)
    for i in range(20):  # everyone else
        add({"transaction_time": when(500 + i), "merchant": OTHER_MERCHANT, "product": "GROCERIES", "amount": "3.20",
             "currency": "GBP", "card_number": fresh(), "email": f"shopper{i}@new.example",
             "username": f"shopper{i}", "ip_address": f"82.2.2.{i + 1}"})
    line = add({"transaction_time": "yesterday", "merchant": OTHER_MERCHANT, "product": "GROCERIES", "amount": "ten",
                "card_number": "4111111111111112", "email": "", "username": "", "ip_address": "not-an-ip"})
    exp.bad_lines.add(line)
    for row in extra or []:
        add(row)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FEED_HEADER)
        w.writeheader()
        w.writerows(rows)
    return exp


# --- reading what a screen did -------------------------------------------------------------------


def setup(store: Store, t: Triaged, tmp_path: Path, **kw: Any) -> tuple[Operation, Expected, Path]:
    """Prepare the operation in ``store`` and write the later feed; return both and the feed's path."""
    from casekit import card_numbers

    op = prepare(store, t)
    feed = tmp_path / "feed.csv"
    return op, later_feed(feed, op, known_cards=card_numbers(t.scenario), **kw), feed


def alerts_seen(store: Store, principal: Any = None) -> dict[str, set[tuple[int, str]]]:
    """person -> {(line, matched_on)} of the alerts ``principal`` may see (everyone's by default)."""
    from ore.watch import list_alerts, refresh

    refresh(store)
    with store.session(principal) as s:
        return {v.subject.person_ref: {(r.line, r.matched_on) for r in v.rows} for v in list_alerts(s, with_rows=True)}


def lead_rows(summary: Any) -> list[dict[str, str]]:
    if summary.leads_package is None:
        return []
    with (Path(summary.leads_package) / "leads.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def counts(store: Store) -> tuple[int, ...]:
    """Rows in the watch's feed, alert, alert-row and lead tables."""
    from sqlalchemy import func

    from ore.store.watch_models import WatchAlert, WatchAlertRow, WatchFeed, WatchLead

    with store.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (WatchFeed, WatchAlert, WatchAlertRow,
                                                                              WatchLead))
