"""Dissemination: a signed per-force package of the persons whose band a supervisor confirmed.

Who goes in: the persons of one force (disseminated to it, else allocated to it by
postcode) in an operation whose case is ``triaged`` and passes the lifecycle's rules
for ``disseminated`` (band confirmed, band actionable, force named). Each is moved to
``disseminated`` by the lifecycle's own ``transition_many``, so the guard applies and
the step records who, when, why and to which force. A sealed person is never
included; a withdrawn one (no longer named by the latest triage) neither. Persons of
the force that are not ready are listed with the rule that holds them back; naming
persons explicitly (``persons=``) refuses the whole package if any of them is held.

What goes out: persons, reasons (band, reason codes, sentences), records with masked
cards only (never a clear number, never the card token: a token means something only
with the workspace's key), evidence indicators, holdings links with match
probabilities; CSV with formula injection neutralised; a manifest (names, sha256, row
counts, force, operation, time, ore version) signed with the workspace's Ed25519 key.
The package is written before the transaction commits: if writing fails, no case
moves; if the commit fails, the written package is removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ore import __version__
from ore.audit.chain import record_for
from ore.auth import approvals
from ore.auth.principal import Principal
from ore.auth.scope import principal_of
from ore.cases.lifecycle import TRANSITIONS, Request, TransitionRefused, check, transition_many
from ore.cases.queries import case_query
from ore.errors import OreError
from ore.report.package_sign import FORMAT, file_entry, fingerprint, public_pem, signing_key, write_signed_zip
from ore.report.safecsv import csv_text
from ore.store import Store
from ore.store.access import Disclosure
from ore.store.models import Case, HoldingLink, Operation, Package, Person, Recommendation, Record
from ore.workspace import Workspace

PERSON_COLUMNS = ("person_ref", "package", "name", "date_of_birth", "postcode", "force_code", "force_name", "band",
                  "recommended_band", "evidence_grade", "evidence_reasons", "likely_victim", "record_count",
                  "s38_category", "disseminated_at", "due_at")
REASON_COLUMNS = ("person_ref", "band", "reason_codes", "n", "sentence")
RECORD_COLUMNS = ("record_ref", "person_ref", "transaction_time", "merchant", "product", "product_category", "amount",
                  "currency", "status", "card_masked", "fraud_score", "fraud_suspected", "indicator_codes")
INDICATOR_COLUMNS = ("record_ref", "person_ref", "code", "weight", "sentence")
HOLDING_COLUMNS = ("person_ref", "holding", "ref", "match_probability", "match_weight", "detail")


def approve_step(session: Session, case: Case, to: str, force: str | None, approval: int | None) -> None:
    """The two-person rule for one lifecycle step (as ``disseminate`` applies it to a package):
    disseminating a P1 person, or disclosing a person to a force other than theirs, uses up a
    second authorised user's approval for that person; any other step needs none."""
    if to != "disseminated" or to not in TRANSITIONS.get(case.status, ()):
        return  # not a dissemination, or not one the lifecycle allows: its own refusal says why
    who, ref = principal_of(session), case.person.person_ref
    if case.band == "P1":  # the band a supervisor confirmed (dissemination needs one)
        approvals.use(session, who, "disseminate_p1", ref, approval)
    elif force and case.person.force_code and force != case.person.force_code:
        approvals.use(session, who, "cross_force_disclosure", ref, approval)


class DisseminationRefused(OreError):
    """Nothing to disseminate, or a named person a rule holds back; ``held`` says who and why."""

    def __init__(self, message: str, held: list[tuple[str, str, str]]) -> None:
        self.held = held
        self.rule = held[0][1] if held else None
        super().__init__(message)


@dataclass
class Dissemination:
    force: str
    operation: str
    path: Path
    public_key_path: Path
    key_fingerprint: str
    persons: list[str]
    counts: dict[str, int]
    held: list[tuple[str, str, str]] = field(default_factory=list)  # (person_ref, rule, message)
    sealed_skipped: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "operation"


def _iso(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat(timespec="seconds")
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _operation(session: Session, operation: str | None, force: str) -> Operation:
    ops = list(session.scalars(select(Operation).order_by(Operation.name)))
    if operation is not None:
        for op in ops:
            if op.name == operation:
                return op
        raise OreError(f"no operation {operation!r} in the case store" +
                       (f" (there are: {', '.join(o.name for o in ops)})" if ops else ": import a triage first"))
    if not ops:
        raise OreError("the case store holds no operation: import a triage first (ore cases import OUTDIR)")
    if len(ops) > 1:
        raise OreError(f"the case store holds several operations ({', '.join(o.name for o in ops)}): give --operation")
    return ops[0]


def _held_by(case: Case, req: Request, at: datetime) -> TransitionRefused | None:
    ref = case.person.person_ref
    if not (case.band_confirmed and case.band):
        return TransitionRefused("band_confirmed", ref)  # the rule that matters, whatever the status
    try:
        check(case, req, at)
    except TransitionRefused as e:
        return e
    return None


def disseminate(
    store: Store, ws: Workspace, force: str, *, by: str = "", out: Path, operation: str | None = None,
    package: str | None = None, persons: list[str] | None = None, reason: str | None = None,
    at: datetime | None = None, principal: Principal | None = None, approval: int | None = None,
    purpose: str = "disclosure",
) -> Dissemination:
    """Disseminate the force's confirmed persons: move their cases, write and sign the package.

    With a signed-in ``principal`` (who needs ``cases.disseminate``) the two-person rule
    applies: a package holding a P1 person, or a person allocated to another force, needs
    an ``approval`` for ``force``. The disclosure (recipient, persons, package file) is an
    audit entry and a ``disclosures`` row per person, in the transaction that moves the cases.
    """
    if principal is not None:
        principal.require("cases.disseminate", "disseminate")
        by = principal.username
    force = force.strip()
    if not force:
        raise OreError("give the receiving force's code (--force)")
    at = at or datetime.now(UTC)
    reason = reason or f"Disseminated to {force} in a signed package."
    key = signing_key(ws)
    written: Path | None = None
    try:
        with store.session(principal) as s:
            s.info["purpose"] = purpose
            op = _operation(s, operation, force)
            q = (case_query(s).where(Case.operation_id == op.id, Person.withdrawn_at.is_(None))
                 .where((Case.force_code == force) | (Case.force_code.is_(None) & (Person.force_code == force))))
            if package:
                q = q.where(Package.package_ref == package)
            if persons:
                q = q.where(Person.person_ref.in_(persons))
            cases = list(s.scalars(q.order_by(Package.package_ref, Person.person_ref)))
            if persons:
                missing = sorted(set(persons) - {c.person.person_ref for c in cases})
                if missing:
                    raise OreError(f"not persons of force {force} in {op.name}: {', '.join(missing)}")
            sealed = [c for c in cases if c.sealed]
            held: list[tuple[str, str, str]] = []
            ready: list[Case] = []
            for c in cases:
                if c.sealed:
                    if persons:
                        e = TransitionRefused("sealed", c.person.person_ref)
                        held.append((c.person.person_ref, e.rule, str(e)))
                    continue
                if c.status != "triaged" and not persons and c.status != "identified":
                    continue  # already disseminated or beyond: not this package's business
                refusal = _held_by(c, Request(to="disseminated", by=by, reason=reason, at=at, force=force), at)
                if refusal is None:
                    ready.append(c)
                else:
                    held.append((c.person.person_ref, refusal.rule, str(refusal)))
            if persons and held:
                raise DisseminationRefused(
                    f"nothing disseminated: {len(held)} named person(s) held back; first: {held[0][2]}", held)
            if not ready:
                first = f"; first: {held[0][2]}" if held else ""
                raise DisseminationRefused(
                    f"nothing to disseminate to {force} in {op.name}: no person with a confirmed band is waiting "
                    f"({len(held)} held back{first})", held)
            who = principal_of(s)
            if any(c.band == "P1" for c in ready):
                approvals.use(s, who, "disseminate_p1", force, approval)
            elif any((c.person.force_code or force) != force for c in ready):
                approvals.use(s, who, "cross_force_disclosure", force, approval)
            # The lifecycle's own step: the guard runs again and each move is recorded with who, when, why.
            transition_many(s, [(c, Request(to="disseminated", by=by, reason=reason, at=at, force=force))
                                for c in ready])
            files, counts = _package_files(s, ready)
            stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            stem = f"ore-{_slug(force)}-{_slug(op.name)}-{stamp}"
            out = Path(out)
            path = out / f"{stem}.zip"
            if path.exists():
                raise OreError(f"{path} exists already: give another --out")
            manifest = {
                "format": FORMAT, "force": force, "operation": op.name, "created_at": _iso(at),
                "created_by": by, "ore_version": __version__, "persons": len(ready),
                "packages": sorted({c.person.package.package_ref for c in ready}),
                "key_fingerprint": fingerprint(key),
                "files": [file_entry(name, data, counts[name]) for name, data in files.items()],
            }
            entry = record_for(s, action="disseminate", category="disclosure", user=by, default_purpose="disclosure",
                               objects=[c.person.person_ref for c in ready],
                               detail={"recipients": [force], "operation": op.name, "file": path.name,
                                       "counts": counts, "approval": approval})
            s.execute(insert(Disclosure.__table__), [
                {"audit_seq": entry.seq, "person_id": c.person_id, "person_ref": c.person.person_ref,
                 "package_ref": c.person.package.package_ref, "recipient": force, "kind": "dissemination", "at": at}
                for c in ready])
            write_signed_zip(path, files, manifest, key)
            written = path
            pub = out / f"{stem}.pub"
            pub.write_bytes(public_pem(key))
            result = Dissemination(force, op.name, path, pub, fingerprint(key),
                                   [c.person.person_ref for c in ready], counts, held, len(sealed))
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)
        raise
    return result


def _package_files(s: Session, cases: list[Case]) -> tuple[dict[str, bytes], dict[str, int]]:
    by_id = {c.person_id: c for c in cases}
    ids = list(by_id)
    latest: dict[int, Recommendation] = {}
    recs: list[Recommendation] = []
    links: list[HoldingLink] = []
    records: list[Record] = []
    for chunk in (ids[i:i + 5000] for i in range(0, len(ids), 5000)):
        recs += s.scalars(select(Recommendation).where(Recommendation.person_id.in_(chunk)).order_by(Recommendation.id))
        links += s.scalars(select(HoldingLink).where(HoldingLink.person_id.in_(chunk), HoldingLink.withdrawn_at.is_(None)))
        records += s.scalars(select(Record).where(Record.person_id.in_(chunk), Record.withdrawn_at.is_(None)))
    for r in recs:
        latest[r.person_id] = r

    def ref(pid: int | None) -> str:
        return by_id[pid].person.person_ref if pid in by_id else ""

    person_rows = []
    reason_rows = []
    for c in cases:
        p = c.person
        person_rows.append((p.person_ref, p.package.package_ref, p.display_name, _iso(p.date_of_birth), p.postcode,
                            c.force_code, p.force_name, c.band, c.recommended_band, p.evidence_grade, p.grade_reasons,
                            "yes" if p.likely_victim else "no", p.record_count, c.s38_category,
                            _iso(c.disseminated_at), _iso(c.due_at)))
        rec = latest.get(c.person_id)
        sentences = json.loads(rec.sentences or "[]") if rec else []
        codes = rec.reasons if rec else ""
        for n, sentence in enumerate(sentences or [""], 1):
            reason_rows.append((p.person_ref, c.band, codes, n, sentence))
    records.sort(key=lambda r: (ref(r.person_id), r.transaction_time or datetime.min.replace(tzinfo=UTC), r.record_ref))
    record_rows, indicator_rows = [], []
    for r in records:
        inds = json.loads(r.indicators or "[]")
        # card_masked only: neither the clear number (never stored) nor card_token (needs the workspace key)
        record_rows.append((r.record_ref, ref(r.person_id), _iso(r.transaction_time), r.merchant, r.product,
                            r.product_category, r.amount, r.currency, r.status, r.card_masked, r.fraud_score,
                            "yes" if r.fraud_suspected else "no", ";".join(i["code"] for i in inds)))
        for i in inds:
            indicator_rows.append((r.record_ref, ref(r.person_id), i.get("code"), i.get("weight"), i.get("sentence")))
    links.sort(key=lambda link: (ref(link.person_id), link.holding, link.ref))
    holding_rows = [(ref(link.person_id), link.holding, link.ref, link.match_probability, link.match_weight, link.detail)
                    for link in links]
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for name, header, rows in (("persons.csv", PERSON_COLUMNS, person_rows), ("reasons.csv", REASON_COLUMNS, reason_rows),
                               ("records.csv", RECORD_COLUMNS, record_rows),
                               ("indicators.csv", INDICATOR_COLUMNS, indicator_rows),
                               ("holdings.csv", HOLDING_COLUMNS, holding_rows)):
        text, n = csv_text(header, rows)
        files[name] = text.encode("utf-8")
        counts[name] = n
    return files, counts
