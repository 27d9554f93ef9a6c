"""Export of an operation as FollowTheMoney entities (JSON lines), loadable into Aleph.

Entities: ``Person`` (identified persons and unidentified subjects, with band and
evidence grade in the summary), ``Address`` (``Person.addressEntity``),
``UserAccount`` (email and username, ``owner`` the person), ``Organization`` (the
merchant) and ``Payment`` (payer the person, beneficiary the merchant; the card only
masked, in the description). Every value goes through the model's ``make_entity`` and
``add``, so FtM cleans and validates it (an invalid country or date is dropped, not
exported). Entity ids are hashes (``make_id``) of the operation, package and
reference: they name nobody.

Left out: sealed persons, persons and records a later triage withdrew, and any card
token (it is meaningful only with the workspace key); no clear card number is stored
anywhere to leak. Emails, usernames and addresses come from the workspace's lead
tables, which the case store does not copy; without them the export still has
persons, postcodes and payments.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.errors import OreError
from ore.auth.scope import principal_of, visible_cases
from ore.store.models import Case, Operation, Package, Person, Record
from ore.workspace import Workspace

LEAD_COLUMNS = ("email", "username", "address_line1", "address_line2", "town", "postcode", "country")


@dataclass
class FtmExport:
    operation: str
    path: Path
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _lead_details(ws: Workspace | None, packages: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Email, username and address of each record, from the workspace's ``leads`` table where it has them."""
    if ws is None or not ws.duckdb_path.exists() or not packages:
        return {}
    with ws.duckdb(read_only=True) as con:
        try:
            have = {r[0] for r in con.execute("DESCRIBE leads").fetchall()}
        except duckdb.CatalogException:
            return {}
        cols = [c for c in LEAD_COLUMNS if c in have]
        if not cols:
            return {}
        rows = con.execute(
            f"SELECT package_id, record_id, {', '.join(cols)} FROM leads WHERE list_contains(?, package_id)",
            [packages]).fetchall()
    return {(r[0], r[1]): dict(zip(cols, r[2:], strict=True)) for r in rows}


def export_ftm(session: Session, out: Path, operation: str, ws: Workspace | None = None) -> FtmExport:
    """Write the operation's non-sealed persons, their addresses, accounts and payments to ``out`` (JSON lines)."""
    try:
        from followthemoney import model  # imported here: about a second to load, and only this command needs it
    except ImportError:
        raise OreError("the FollowTheMoney export needs the optional extra: pip install 'ore[ftm]'") from None

    op = session.scalar(select(Operation).where(Operation.name == operation))
    if op is None:
        names = ", ".join(session.scalars(select(Operation.name).order_by(Operation.name)))
        raise OreError(f"no operation {operation!r} in the case store" + (f" (there are: {names})" if names else ""))
    rows = session.execute(
        select(Person, Case, Package.package_ref).join(Case, Case.person_id == Person.id)
        .join(Package, Package.id == Person.package_id)
        .where(Case.operation_id == op.id, Case.sealed.is_(False), Person.withdrawn_at.is_(None),
               visible_cases(principal_of(session)))  # the one scoping rule every case query obeys
        .order_by(Package.package_ref, Person.person_ref)).all()
    persons = {p.id: (p, c, pkg) for p, c, pkg in rows}
    package_refs = sorted({pkg for _, _, pkg in rows})
    details = _lead_details(ws, package_refs)
    result = FtmExport(op.name, Path(out))
    entities: dict[str, Any] = {}

    def emit(entity: Any) -> Any:
        if entity.id in entities:
            entities[entity.id].merge(entity)
        else:
            entities[entity.id] = entity
        return entities[entity.id]

    person_entities: dict[int, Any] = {}
    for pid, (p, c, pkg) in persons.items():
        e = model.make_entity("Person")
        e.make_id("ore", op.name, pkg, p.person_ref)
        e.add("name", p.display_name or f"Unidentified subject {p.person_ref}")
        e.add("birthDate", p.date_of_birth.isoformat() if p.date_of_birth else None)
        band = c.band if c.band_confirmed else c.recommended_band
        e.add("summary", f"ore {p.kind} person {p.person_ref} (package {pkg}); band {band or 'none'}"
                         f"{' confirmed' if c.band_confirmed else ' recommended'}; evidence grade "
                         f"{p.evidence_grade or '-'}; status {c.status}; s.38 category {c.s38_category}")
        e.add("keywords", [k for k in (band, p.force_code) if k])
        if p.postcode and not details:  # no lead tables: the postcode is the address we have
            a = model.make_entity("Address")
            a.make_id("ore-address", p.postcode)
            a.add("full", p.postcode)
            a.add("postalCode", p.postcode)
            a.add("country", "gb")
            emit(a)
            e.add("addressEntity", a.id)
        person_entities[pid] = emit(e)
        result.counts["Person"] += 1

    merchants: dict[str, Any] = {}
    ids = list(persons)
    records: list[Record] = []
    for chunk in (ids[i:i + 5000] for i in range(0, len(ids), 5000)):
        records += session.scalars(select(Record).where(
            ((Record.person_id.in_(chunk)) | (Record.subject_id.in_(chunk))), Record.withdrawn_at.is_(None))
            .order_by(Record.record_ref))
    pkg_of = {pkg_id: ref for pkg_id, ref in session.execute(select(Package.id, Package.package_ref))}
    for r in records:
        owner = r.person_id if r.person_id in persons else r.subject_id
        if owner not in persons:
            continue
        person = person_entities[owner]
        pkg = pkg_of[r.package_id]
        d = details.get((pkg, r.record_ref), {})
        street = ", ".join(x for x in (d.get("address_line1"), d.get("address_line2")) if x)
        if street or d.get("postcode"):
            a = model.make_entity("Address")
            parts = [street, d.get("town"), d.get("postcode")]
            a.make_id("ore-address", *[(x or "").upper() for x in parts])
            a.add("full", ", ".join(x for x in parts if x))
            a.add("street", d.get("address_line1"))
            a.add("street2", d.get("address_line2"))
            a.add("city", d.get("town"))
            a.add("postalCode", (d.get("postcode") or "").upper() or None)
            a.add("country", (d.get("country") or "").lower() or None)
            a = emit(a)
            person.add("addressEntity", a.id)
        if d.get("email") or d.get("username"):
            u = model.make_entity("UserAccount")
            u.make_id("ore-account", person.id, (d.get("email") or "").lower(), d.get("username") or "", r.merchant or "")
            u.add("owner", person.id)
            u.add("email", d.get("email"))
            u.add("username", d.get("username"))
            u.add("service", r.merchant)
            u.add("name", d.get("username") or d.get("email"))
            emit(u)
            person.add("email", d.get("email"))
        merchant = None
        if r.merchant:
            merchant = merchants.get(r.merchant)
            if merchant is None:
                merchant = model.make_entity("Organization")
                merchant.make_id("ore-merchant", r.merchant)
                merchant.add("name", r.merchant)
                merchants[r.merchant] = merchant = emit(merchant)
        pay = model.make_entity("Payment")
        pay.make_id("ore-payment", op.name, pkg, r.record_ref)
        pay.add("payer", person.id)
        if merchant is not None:
            pay.add("beneficiary", merchant.id)
        pay.add("amount", None if r.amount is None else f"{r.amount:.2f}")
        pay.add("currency", r.currency)
        pay.add("date", r.transaction_time.date().isoformat() if r.transaction_time else None)
        pay.add("recordId", r.record_ref)
        pay.add("purpose", r.product)
        # the card only masked (first six, last four); never the clear number, never the token
        pay.add("description", f"card {r.card_masked or 'unknown'} (masked); status {r.status or '-'}"
                               f"{'; fraud suspected' if r.fraud_suspected else ''}")
        emit(pay)

    for e in entities.values():
        result.counts[e.schema.name] += 0 if e.schema.name == "Person" else 1
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=".jsonl", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for e in entities.values():
                f.write(json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result
