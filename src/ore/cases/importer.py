"""Committing a triage run to the case store: ``ore cases import OUTDIR`` and ``ore triage --commit``.

What it reads: the workspace's DuckDB tables for the package the OUTDIR was written
from (the triage just wrote them; the OUTDIR's persons and records must match them,
or the import refuses rather than commit another run than the one the user looked at).

What it decides:
- An import is idempotent: importing the same run again changes no row and writes no
  import record.
- A re-triage of the same package updates persons, records and holding links in
  place, never duplicates them, and writes every changed value to ``changes``; a
  changed recommendation (band, reasons or their sentences) is a new
  ``recommendations`` row, the old ones kept. A person the new run no longer names is
  withdrawn (``withdrawn_at``), not deleted: their case and its history stay.
- If the recommended band changes after a supervisor confirmed the old one and before
  dissemination, the confirmation lapses: the supervisor must look again.
- Cards are kept masked (first six, last four) with the keyed token; never clear.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ore.audit.chain import record
from ore.auth.principal import Principal
from ore.errors import OreError
from ore.store import PERSONS_LOCK, Store
from ore.store.models import (
    Case,
    Change,
    HoldingLink,
    Import,
    Operation,
    Package,
    Person,
    Recommendation,
    Record,
)
from ore.workspace import Workspace

PERSON_FIELDS = ("kind", "display_name", "date_of_birth", "postcode", "force_code", "force_name",
                 "evidence_grade", "likely_victim", "grade_reasons", "identifiers", "record_count")
RECORD_FIELDS = ("person_ref", "subject_ref", "transaction_time", "merchant", "product", "product_category",
                 "amount", "currency", "status", "card_masked", "card_last4", "card_token", "card_key_version",
                 "fraud_score", "fraud_suspected", "indicators")
LINK_FIELDS = ("match_probability", "match_weight", "detail")
REC_FIELDS = ("band", "reasons", "sentences")


@dataclass
class ImportSummary:
    package_id: str
    operation: str
    status: str = "unchanged"  # imported (first time) | updated | unchanged
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        return {"package_id": self.package_id, "operation": self.operation, "status": self.status,
                "counts": {k: v for k, v in self.counts.items() if v}}


# --- reading the triage ---------------------------------------------------------------------


def _read_ids(path: Path, column: str) -> set[str]:
    if not path.exists():
        raise OreError(f"{path} not found: give the OUTDIR a triage wrote (records.csv, persons.csv)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise OreError(f"{path}: no {column} column; is this a triage output?")
        return {row[column] for row in reader if row.get(column)}


def _fingerprint(outdir: Path) -> str:
    h = hashlib.sha256()
    for name in ("persons.csv", "records.csv"):
        h.update((outdir / name).read_bytes())
    return h.hexdigest()


def find_package(con: duckdb.DuckDBPyConnection, outdir: Path, package_id: str | None = None) -> str:
    """The package the OUTDIR was triaged from, checked against the workspace's tables."""
    records = _read_ids(outdir / "records.csv", "record_id")
    persons = _read_ids(outdir / "persons.csv", "person_id")
    if not records:
        raise OreError(f"{outdir / 'records.csv'} lists no records: nothing to import")
    sample = sorted(records)[:200]
    found = [r[0] for r in con.execute(
        "SELECT package_id, count(*) FROM leads WHERE list_contains(?, record_id) GROUP BY 1 ORDER BY 2 DESC",
        [sample]).fetchall()]
    if package_id is None:
        candidates = [p for p in found if _ids(con, "leads", "record_id", p) == records]
        if not candidates:
            raise OreError(f"{outdir} matches no package triaged in this workspace: run the triage here first")
        if len(candidates) > 1:
            raise OreError(f"{outdir} matches packages {', '.join(candidates)}: give --package-id")
        package_id = candidates[0]
    elif _ids(con, "leads", "record_id", package_id) != records:
        raise OreError(f"{outdir}/records.csv does not list the records of package {package_id} in this workspace")
    ours = _ids(con, "identified_persons", "person_id", package_id) | _ids(
        con, "unidentified_subjects", "subject_id", package_id)
    if ours != persons:
        raise OreError(
            f"{outdir} is not the latest triage of {package_id} in this workspace (its persons differ): "
            "re-run the triage, or import the OUTDIR it wrote"
        )
    return package_id


def _check_bands(outdir: Path, package_id: str, triage: dict[str, Any]) -> None:
    """Refuse an OUTDIR whose bands are not the ones the workspace now holds (a later re-run replaced them)."""
    with (outdir / "persons.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            person = triage["persons"].get(row.get("person_id", ""))
            if person is None or (row.get("priority") or "none") != person["recommendation"]["band"]:
                raise OreError(
                    f"{outdir} is not the latest triage of {package_id} in this workspace (person "
                    f"{row.get('person_id')} is banded differently now): import the OUTDIR of the latest run"
                )


def _ids(con: duckdb.DuckDBPyConnection, table: str, column: str, package_id: str) -> set[str]:
    try:
        return {r[0] for r in con.execute(f"SELECT {column} FROM {table} WHERE package_id = ?", [package_id]).fetchall()}
    except duckdb.CatalogException:
        raise OreError(f"the workspace has no {table} table: triage the package before importing it") from None


def _utc(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v


def read_triage(con: duckdb.DuckDBPyConnection, package_id: str) -> dict[str, Any]:
    """Everything the case store keeps of one package's triage, read from the DuckDB tables."""
    pkg = con.execute("SELECT operation, source, received FROM packages WHERE package_id = ?", [package_id]).fetchall()
    if not pkg:
        raise OreError(f"package {package_id} is not in this workspace")
    persons = {}
    for row in con.execute(
        """
        SELECT p.person_id, 'identified', p.display_name, p.date_of_birth, coalesce(f.postcode, p.postcode),
               f.force_code, f.force_name, e.evidence_grade, coalesce(e.likely_victim, false), e.grade_reasons,
               NULL, p.record_count, a.priority, a.reasons, a.sentences
        FROM identified_persons p
        LEFT JOIN person_evidence e ON e.package_id = p.package_id AND e.person_id = p.person_id
        LEFT JOIN person_priority a ON a.package_id = p.package_id AND a.person_id = p.person_id
        LEFT JOIN person_force f ON f.package_id = p.package_id AND f.person_id = p.person_id
        WHERE p.package_id = $1
        UNION ALL
        SELECT s.subject_id, 'unidentified', s.display_name, NULL, NULL, NULL, NULL, NULL, false, NULL,
               s.identifiers, s.record_count, a.priority, a.reasons, a.sentences
        FROM unidentified_subjects s
        LEFT JOIN person_priority a ON a.package_id = s.package_id AND a.person_id = s.subject_id
        WHERE s.package_id = $1
        """, [package_id]).fetchall():
        ref, *values = row
        person = dict(zip(PERSON_FIELDS, values[:11], strict=True))
        person["record_count"] = int(person["record_count"] or 0)
        person["likely_victim"] = bool(person["likely_victim"])
        person["recommendation"] = {"band": values[11] or "none", "reasons": values[12] or "",
                                    "sentences": values[13] or "[]"}
        persons[ref] = person
    indicators: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rid, code, weight, sentence in con.execute(
        "SELECT record_id, code, weight, sentence FROM record_indicators WHERE package_id = ? ORDER BY record_id, code",
        [package_id]).fetchall():
        indicators[rid].append({"code": code, "weight": weight, "sentence": sentence})
    records = {}
    for row in con.execute(
        """
        SELECT l.record_id, r.person_id, e.subject_id, l.transaction_time, l.merchant, l.product, l.product_category,
               l.amount, l.currency, l.status, l.card_masked, l.card_last4, l.card_token, l.card_key_version,
               e.fraud_score, coalesce(e.fraud_suspected, false)
        FROM leads l
        LEFT JOIN resolved_records r USING (package_id, record_id)
        LEFT JOIN record_evidence e USING (package_id, record_id)
        WHERE l.package_id = ?
        """, [package_id]).fetchall():
        rid, *values = row
        rec = dict(zip(RECORD_FIELDS[:-1], values, strict=True))
        rec["transaction_time"] = _utc(rec["transaction_time"])
        rec["fraud_suspected"] = bool(rec["fraud_suspected"])
        rec["indicators"] = json.dumps(indicators.get(rid, []), sort_keys=True)
        records[rid] = rec
    links = {}
    for ref, holding, hold_ref, prob, weight, detail in con.execute(
        "SELECT person_id, holding, ref, match_probability, match_weight, detail FROM holding_links WHERE package_id = ?",
        [package_id]).fetchall():
        links[(ref, holding, hold_ref)] = {"match_probability": prob, "match_weight": weight, "detail": detail}
    operation, source, received = pkg[0]
    return {"operation": operation or package_id, "source": source, "received": received,
            "persons": persons, "records": records, "links": links}


# --- writing it ---------------------------------------------------------------------------------


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v)


class _Changes:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, field_name: str, old: Any, new: Any, *, person_id: int | None = None,
            record_ref: str | None = None) -> None:
        self.rows.append({"person_id": person_id, "record_ref": record_ref, "field": field_name,
                          "old": _text(old), "new": _text(new)})


def import_triage(
    store: Store, ws: Workspace, outdir: Path | None = None, *, package_id: str | None = None, actor: str = "ore",
    principal: Principal | None = None, purpose: str = "triage",
) -> ImportSummary:
    """Commit the triage of a package (found from ``outdir``, or named) to the case store.

    ``principal``, the signed-in user, needs ``cases.import`` and is the actor. The import
    itself runs with the system's view of the store: it must see every person of the
    package, sealed or not, to update rather than duplicate them; it shows no one, and
    reports only counts. It is logged as a collection and a combination (the triage
    linked records into persons and persons to holdings), in the same transaction.
    """
    if principal is not None:
        principal.require("cases.import", "import a triage into the case store")
        actor = principal.username
    if outdir is None and package_id is None:
        raise OreError("give the triage OUTDIR (or the package id) to import")
    with ws.duckdb(read_only=True) as con:
        if outdir is not None:
            package_id = find_package(con, Path(outdir), package_id)
        assert package_id is not None
        triage = read_triage(con, package_id)
    if outdir is not None:
        _check_bands(Path(outdir), package_id, triage)
    fingerprint = _fingerprint(Path(outdir)) if outdir is not None else None
    with store.session() as session:
        store.serialise(session, PERSONS_LOCK)  # one import (or erasure) at a time: see ore.store.engine
        summary = _write(session, package_id, triage, str(outdir) if outdir else None, fingerprint, actor)
        counts = {k: v for k, v in summary.counts.items() if v}
        # The same run again collects nothing and writes nothing, not even an audit entry.
        for category in ("collection", "combination") if summary.status != "unchanged" else ():
            record(session, user=actor, action="cases.import", category=category, objects=[package_id],
                   purpose=purpose, detail={"operation": summary.operation, "status": summary.status,
                                            "counts": counts, "outdir": str(outdir) if outdir else None})
        return summary


def _diff(old: dict[str, Any], new: dict[str, Any], fields: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    return {f: (old[f], new[f]) for f in fields if _utc(old[f]) != _utc(new[f])}


def _write(session: Session, package_id: str, t: dict[str, Any], outdir: str | None, fingerprint: str | None,
           actor: str) -> ImportSummary:
    now = datetime.now(UTC)
    summary = ImportSummary(package_id, t["operation"])
    n = summary.counts
    package = session.scalar(select(Package).where(Package.package_ref == package_id))
    if package is None:
        op = session.scalar(select(Operation).where(Operation.name == t["operation"]))
        if op is None:
            op = Operation(name=t["operation"], created_at=now)
            session.add(op)
            session.flush()
        package = Package(package_ref=package_id, operation_id=op.id, source=t["source"], received=t["received"],
                          first_imported_at=now)
        session.add(package)
        session.flush()
        summary.status = "imported"
    pkg_id, op_id = package.id, package.operation_id
    summary.operation = package.operation.name

    # One import row, written first so changes can point at it; dropped again if nothing changed.
    imp = Import(package_id=pkg_id, outdir=outdir, fingerprint=fingerprint, actor=actor, at=now, summary="{}")
    session.add(imp)
    session.flush()
    changes = _Changes()

    # persons
    existing = {p.person_ref: p for p in session.scalars(select(Person).where(Person.package_id == pkg_id))}
    # an erased person's data stays erased: a re-triage brings back none of it (nor withdraws them)
    erased = {ref for ref, p in existing.items() if p.erased_at is not None}
    if erased:
        t = {**t, "persons": {ref: p for ref, p in t["persons"].items() if ref not in erased},
             "records": {rid: r for rid, r in t["records"].items()
                         if r["person_ref"] not in erased and r["subject_ref"] not in erased},
             "links": {k: v for k, v in t["links"].items() if k[0] not in erased}}
        n["erased_kept_out"] = len(erased)
    new_persons = [
        {"package_id": pkg_id, "person_ref": ref, **{f: p[f] for f in PERSON_FIELDS}}
        for ref, p in t["persons"].items() if ref not in existing
    ]
    if new_persons:
        session.execute(insert(Person.__table__), new_persons)
        n["persons_added"] += len(new_persons)
    updates = []
    for ref, p in t["persons"].items():
        old = existing.get(ref)
        if old is None:
            continue
        diff = _diff({f: getattr(old, f) for f in PERSON_FIELDS}, p, PERSON_FIELDS)
        if old.withdrawn_at is not None:
            diff["withdrawn_at"] = (old.withdrawn_at, None)
        if diff:
            updates.append({"id": old.id, **{f: new for f, (_, new) in diff.items()}})
            for f, (o, nv) in diff.items():
                changes.add(f, o, nv, person_id=old.id)
    for ref, old in existing.items():
        if ref not in t["persons"] and old.withdrawn_at is None and ref not in erased:
            updates.append({"id": old.id, "withdrawn_at": now})
            changes.add("withdrawn_at", None, now, person_id=old.id)
            n["persons_withdrawn"] += 1
    if updates:
        session.execute(update(Person), updates)
        n["persons_updated"] += sum(1 for u in updates if set(u) != {"id", "withdrawn_at"} or u["withdrawn_at"] is None)
    ids: dict[str, int] = {ref: pid for ref, pid in session.execute(
        select(Person.person_ref, Person.id).where(Person.package_id == pkg_id))}

    # recommendations (history kept) and cases
    latest: dict[int, Recommendation] = {}
    for rec in session.scalars(select(Recommendation).join(Person, Person.id == Recommendation.person_id)
                               .where(Person.package_id == pkg_id).order_by(Recommendation.id)):
        latest[rec.person_id] = rec
    new_recs, changed_band = [], {}
    for ref, p in t["persons"].items():
        r = p["recommendation"]
        pid = ids[ref]
        last = latest.get(pid)
        if last is not None and all(getattr(last, f) == r[f] for f in REC_FIELDS):
            continue
        new_recs.append({"person_id": pid, **r, "evidence_grade": p["evidence_grade"],
                         "likely_victim": p["likely_victim"], "import_id": imp.id, "recorded_at": now})
        if last is not None:
            for f in REC_FIELDS:
                if getattr(last, f) != r[f]:
                    changes.add(f"recommendation.{f}", getattr(last, f), r[f], person_id=pid)
            if last.band != r["band"]:
                changed_band[pid] = r["band"]
    if new_recs:
        session.execute(insert(Recommendation.__table__), new_recs)
        n["recommendations_added"] += len(new_recs)
    with_case = set(session.scalars(select(Case.person_id).join(Person).where(Person.package_id == pkg_id)))
    new_cases = [
        {"operation_id": op_id, "person_id": ids[ref], "status": "identified", "s38_category": "suspect",
         "recommended_band": p["recommendation"]["band"], "band_confirmed": False, "sealed": False,
         "event_count": 0, "opened_at": now, "updated_at": now, "version": 1}
        for ref, p in t["persons"].items() if ids[ref] not in with_case
    ]
    if new_cases:
        session.execute(insert(Case.__table__), new_cases)
        n["cases_opened"] += len(new_cases)
    if changed_band:
        for case in session.scalars(select(Case).where(Case.person_id.in_(list(changed_band)))):
            case.recommended_band = changed_band[case.person_id]
            if case.status == "triaged" and case.band_confirmed:
                case.band_confirmed = False  # the supervisor confirmed another recommendation
                changes.add("case.band_confirmed", True, False, person_id=case.person_id)
                n["confirmations_lapsed"] += 1
        session.flush()

    # records
    old_records = {r.record_ref: r for r in session.scalars(select(Record).where(Record.package_id == pkg_id))}
    refs_by_id = {v: k for k, v in ids.items()}

    def as_row(rec: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in rec.items() if k not in ("person_ref", "subject_ref")}
        row["person_id"] = ids.get(rec["person_ref"]) if rec["person_ref"] else None
        row["subject_id"] = ids.get(rec["subject_ref"]) if rec["subject_ref"] else None
        return row

    new_rows = [{"package_id": pkg_id, "record_ref": rid, **as_row(rec)}
                for rid, rec in t["records"].items() if rid not in old_records]
    if new_rows:
        session.execute(insert(Record.__table__), new_rows)
        n["records_added"] += len(new_rows)
    rec_updates = []
    for rid, rec in t["records"].items():
        old = old_records.get(rid)
        if old is None:
            continue
        current = {f: getattr(old, f) for f in RECORD_FIELDS if f not in ("person_ref", "subject_ref")}
        current["person_ref"] = refs_by_id.get(old.person_id) if old.person_id else None
        current["subject_ref"] = refs_by_id.get(old.subject_id) if old.subject_id else None
        diff = _diff(current, rec, RECORD_FIELDS)
        if old.withdrawn_at is not None:
            diff["withdrawn_at"] = (old.withdrawn_at, None)
        if diff:
            row = as_row({f: rec[f] for f in RECORD_FIELDS})
            rec_updates.append({"id": old.id, **{k: row[k] for k in row if k in diff or
                                (k == "person_id" and "person_ref" in diff) or
                                (k == "subject_id" and "subject_ref" in diff)},
                                **({"withdrawn_at": None} if "withdrawn_at" in diff else {})})
            for f, (o, nv) in diff.items():
                changes.add(f"record.{f}", o, nv, person_id=ids.get(rec["person_ref"] or ""), record_ref=rid)
    for rid, old in old_records.items():
        if rid not in t["records"] and old.withdrawn_at is None:
            rec_updates.append({"id": old.id, "withdrawn_at": now})
            changes.add("record.withdrawn_at", None, now, person_id=old.person_id, record_ref=rid)
            n["records_withdrawn"] += 1
    if rec_updates:
        session.execute(update(Record), rec_updates)
        n["records_updated"] += len(rec_updates) - n["records_withdrawn"]

    # holding links
    old_links = {}
    for link in session.scalars(select(HoldingLink).join(Person, Person.id == HoldingLink.person_id)
                                .where(Person.package_id == pkg_id)):
        old_links[(refs_by_id[link.person_id], link.holding, link.ref)] = link
    new_links, link_updates = [], []
    for key, link in t["links"].items():
        if key[0] not in ids:
            continue
        old = old_links.get(key)
        if old is None:
            new_links.append({"person_id": ids[key[0]], "holding": key[1], "ref": key[2], **link})
            continue
        diff = _diff({f: getattr(old, f) for f in LINK_FIELDS}, link, LINK_FIELDS)
        if old.withdrawn_at is not None:
            diff["withdrawn_at"] = (old.withdrawn_at, None)
        if diff:
            link_updates.append({"id": old.id, **{f: nv for f, (_, nv) in diff.items()}})
            for f, (o, nv) in diff.items():
                changes.add(f"link.{key[1]}.{key[2]}.{f}", o, nv, person_id=old.person_id)
    for key, old in old_links.items():
        if key not in t["links"] and old.withdrawn_at is None:
            link_updates.append({"id": old.id, "withdrawn_at": now})
            changes.add(f"link.{key[1]}.{key[2]}.withdrawn_at", None, now, person_id=old.person_id)
    if new_links:
        session.execute(insert(HoldingLink.__table__), new_links)
        n["links_added"] += len(new_links)
    if link_updates:
        session.execute(update(HoldingLink), link_updates)
        n["links_updated"] += len(link_updates)

    if changes.rows:
        session.execute(insert(Change.__table__), [{**c, "import_id": imp.id, "at": now} for c in changes.rows])
        n["changes"] += len(changes.rows)
    if not any(n.values()):
        session.delete(imp)  # the same run again: nothing to record
        return summary
    if summary.status == "unchanged":
        summary.status = "updated"
    imp.summary = json.dumps(dict(n), sort_keys=True)
    return summary
