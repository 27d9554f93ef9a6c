"""The watchlists, rebuilt from the case store before every screen, so they are always in step with it.

Who is watched: every person whose case is convicted or cautioned, read through
``ore.cases.queries.case_query`` (the one place cases are scoped). A sealed person, an
eliminated one, or one whose personal data retention erased is never watched: the sync
takes them off (``watch_subjects.on_watch``) and hides their rows like a sealed case, so
an alert raised before the sealing is hidden too. Unsealing puts them back.

What is watched of them: the card tokens of their records in the case store, and the
normalised emails and account names of those records, read from the workspace's
``leads`` table (the case store keeps no emails). Records the triage judged likely card
fraud (``fraud_suspected``) are left out whole: their card is the person's, but the
purchase, and the email and account on it, were someone else's, and watching them would
charge a convicted person with a thief's purchases. Withdrawn records are left out too.

Alerts go to the force of the person's offender manager where one is recorded
(``ore watch manager``), else to the force the case was disseminated to, else to the
force triage allocated.

What is flagged: merchants that sold ``abuse`` products in any package in the store,
and those products; and what an analyst adds. A flag an analyst removed stays removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from ore.cases.queries import case_query
from ore.errors import OreError
from ore.store.models import Case, Package, Person, Record
from ore.store.watch_models import WatchFlag, WatchSubject
from ore.watch.normalise import descriptor_sql, email_sql, username_sql

WATCHED = ("convicted", "cautioned")
SUBJECT_FIELDS = ("person_ref", "package_ref", "case_status", "force_code", "on_watch", "off_reason", "sealed")


@dataclass
class SyncSummary:
    watched: int = 0
    added: int = 0
    updated: int = 0
    taken_off: int = 0


def _off_reason(status: str, sealed: bool, erased: bool) -> str | None:
    if status == "eliminated":
        return "eliminated"
    if sealed:
        return "sealed"
    if erased:
        return "erased"
    if status not in WATCHED:
        return "status"
    return None


def sync_subjects(session: Session, at: datetime | None = None) -> SyncSummary:
    """Bring ``watch_subjects`` in step with ``cases``. Run in a system session: it must see sealed cases
    to take them off the watch (it shows no one; it writes only the watch's own rows)."""
    at = at or datetime.now(UTC)
    known = {s.case_id: s for s in session.scalars(select(WatchSubject))}
    q = (case_query(session)
         .with_only_columns(Case.id, Case.status, Case.sealed, Case.force_code, Person.force_code,
                            Person.person_ref, Package.package_ref, Person.erased_at)
         .where(or_(Case.status.in_(WATCHED), Case.id.in_(select(WatchSubject.case_id)))))
    summary = SyncSummary()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for case_id, status, sealed, case_force, allocated, ref, pkg, erased_at in session.execute(q):
        reason = _off_reason(status, bool(sealed), erased_at is not None)
        row = {"person_ref": ref, "package_ref": pkg, "case_status": status, "on_watch": reason is None,
               "off_reason": reason, "sealed": bool(sealed) or status == "eliminated"}
        old = known.get(case_id)
        row["force_code"] = (old.manager_force if old is not None else None) or case_force or allocated
        summary.watched += reason is None
        if old is None:
            if reason is None:
                new.append({"case_id": case_id, "manager_force": None, "manager": None, "first_watched_at": at,
                            "synced_at": at, **row})
            continue
        if any(getattr(old, f) != row[f] for f in SUBJECT_FIELDS):
            summary.taken_off += bool(old.on_watch and reason is not None)
            changed.append({"sid": old.id, "synced_at": at, **row})
    if new:
        session.execute(insert(WatchSubject), new)
        summary.added = len(new)
    if changed:
        t = WatchSubject.__table__
        session.execute(update(t).where(t.c.id == bindparam("sid")), changed)  # type: ignore[arg-type]
        summary.updated = len(changed)
    session.flush()
    return summary


# --- identifiers ---------------------------------------------------------------------------------


@dataclass
class Watchlist:
    """The identifiers watched, per subject, as Arrow tables for the screen's engine."""

    cards: pa.Table  # subject_id, token, key_version, last4
    emails: pa.Table  # subject_id, value (normalised), shown
    usernames: pa.Table  # subject_id, value, shown
    merchants: pa.Table  # flag_id, value
    products: pa.Table  # flag_id, value
    categories: dict[str, str]  # normalised product -> abuse | adult (as the packages labelled it)
    subjects: dict[int, WatchSubject]
    notes: list[str] = field(default_factory=list)

    @property
    def key_versions(self) -> list[int]:
        return sorted({v for v in self.cards.column("key_version").to_pylist() if v is not None})

    def counts(self) -> dict[str, int]:
        return {"subjects": len(self.subjects), "card_tokens": self.cards.num_rows, "emails": self.emails.num_rows,
                "usernames": self.usernames.num_rows, "flagged_merchants": self.merchants.num_rows,
                "flagged_products": self.products.num_rows}


def _records(session: Session) -> list[tuple[Any, ...]]:
    """(subject_id, package_ref, record_ref, token, key_version, last4) of every watched subject's records."""
    rows: list[tuple[Any, ...]] = []
    for link in (Record.person_id, Record.subject_id):
        q = (select(WatchSubject.id, Package.package_ref, Record.record_ref, Record.card_token,
                    Record.card_key_version, Record.card_last4)
             .select_from(WatchSubject)
             .join(Case, Case.id == WatchSubject.case_id)
             .join(Record, link == Case.person_id)
             .join(Package, Package.id == Record.package_id)
             .where(WatchSubject.on_watch.is_(True), Record.withdrawn_at.is_(None),
                    Record.fraud_suspected.is_(False)))
        rows.extend(tuple(r) for r in session.execute(q))
    return rows


def build(session: Session, con: duckdb.DuckDBPyConnection, workspace_duckdb: Path | None) -> Watchlist:
    """The watchlists now: subjects on the watch with their cards, emails and account names; the flags.

    ``con`` is the screen's DuckDB connection; the workspace's DuckDB file (for emails and
    account names) is attached to it read-only for the time of the query.
    """
    subjects = {s.id: s for s in session.scalars(select(WatchSubject).where(WatchSubject.on_watch.is_(True)))}
    recs = _records(session)
    notes: list[str] = []
    rec_table = pa.table({
        "subject_id": pa.array([r[0] for r in recs], pa.int64()),
        "package_id": pa.array([r[1] for r in recs], pa.string()),
        "record_id": pa.array([r[2] for r in recs], pa.string()),
        "token": pa.array([r[3] for r in recs], pa.string()),
        "key_version": pa.array([r[4] for r in recs], pa.int32()),
        "last4": pa.array([r[5] for r in recs], pa.string()),
    })
    con.register("_watch_records", rec_table)
    cards = con.sql("SELECT DISTINCT subject_id, token, key_version, last4 FROM _watch_records "
                    "WHERE token IS NOT NULL").to_arrow_table()
    empty = pa.table({"subject_id": pa.array([], pa.int64()), "value": pa.array([], pa.string()),
                      "shown": pa.array([], pa.string())})
    emails, usernames = empty, empty
    if recs and workspace_duckdb is not None and workspace_duckdb.exists():
        con.execute("ATTACH $p AS wsdb (READ_ONLY)", {"p": str(workspace_duckdb)})
        try:
            emails, usernames = _contacts(con, rec_table, notes) or (empty, empty)
        finally:
            con.execute("DETACH wsdb")
    elif recs:
        notes.append("no workspace bulk tables: only card tokens are watched")
    con.unregister("_watch_records")
    flags = list(session.execute(select(WatchFlag.id, WatchFlag.kind, WatchFlag.value)
                                 .where(WatchFlag.removed_at.is_(None))))
    merchants = pa.table({"flag_id": pa.array([f[0] for f in flags if f[1] == "merchant"], pa.int64()),
                          "value": pa.array([f[2] for f in flags if f[1] == "merchant"], pa.string())})
    products = pa.table({"flag_id": pa.array([f[0] for f in flags if f[1] == "product"], pa.int64()),
                         "value": pa.array([f[2] for f in flags if f[1] == "product"], pa.string())})
    return Watchlist(cards, emails, usernames, merchants, products, product_categories(session, con), subjects,
                     notes)


def _contacts(con: duckdb.DuckDBPyConnection, records: pa.Table,
              notes: list[str]) -> tuple[pa.Table, pa.Table] | None:
    """Normalised emails and account names of the watched records, from the attached workspace ``leads``."""
    has_leads = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'wsdb' "
                            "AND table_name = 'leads'").fetchall()[0][0]
    if not has_leads:
        notes.append("the workspace holds no leads table: only card tokens are watched")
        return None
    con.execute("""CREATE OR REPLACE TEMP TABLE _watch_contacts AS
                   SELECT r.subject_id, r.package_id, l.email, l.username
                   FROM _watch_records r JOIN wsdb.leads l USING (package_id, record_id)""")
    found = {p for (p,) in con.execute("SELECT DISTINCT package_id FROM _watch_contacts").fetchall()}
    if missing := sorted(set(records.column("package_id").to_pylist()) - found):
        notes.append("emails and account names of packages not in this workspace's bulk tables are not watched "
                     f"(their card tokens are): {', '.join(missing)}")
    out = []
    for col, sql in (("email", email_sql("email")), ("username", username_sql("username"))):
        out.append(con.sql(f"""SELECT subject_id, value, min(shown) AS shown FROM (
                                     SELECT subject_id, trim({col}) AS shown, {sql} AS value FROM _watch_contacts)
                                   WHERE value IS NOT NULL GROUP BY subject_id, value""").to_arrow_table())
    con.execute("DROP TABLE _watch_contacts")
    return out[0], out[1]


# --- flags -----------------------------------------------------------------------------------------


def _package_products(session: Session, con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """(merchant_n, merchant, product_n, product, category, package_ref) of every labelled purchase in the store."""
    rows = session.execute(
        select(Record.merchant, Record.product, Record.product_category, Package.package_ref)
        .join(Package, Package.id == Record.package_id)
        .where(Record.product_category.in_(["abuse", "adult"]), Record.withdrawn_at.is_(None))
        .distinct()).all()
    if not rows:
        return []
    con.register("_pkg_products", pa.table({
        "merchant": pa.array([r[0] for r in rows], pa.string()), "product": pa.array([r[1] for r in rows], pa.string()),
        "category": pa.array([r[2] for r in rows], pa.string()),
        "package_ref": pa.array([r[3] for r in rows], pa.string())}))
    try:
        return [tuple(r) for r in con.execute(
            f"SELECT {descriptor_sql('merchant')}, merchant, {descriptor_sql('product')}, product, category, "
            "package_ref FROM _pkg_products ORDER BY package_ref, merchant, product").fetchall()]
    finally:
        con.unregister("_pkg_products")


def product_categories(session: Session, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """What the packages called each product: ``abuse`` wins over ``adult`` where they disagree."""
    out: dict[str, str] = {}
    for _, _, product_n, _, category, _ in _package_products(session, con):
        if product_n and out.get(product_n) != "abuse":
            out[product_n] = category
    return out


def sync_flags(session: Session, con: duckdb.DuckDBPyConnection, at: datetime | None = None) -> int:
    """Flag the merchants and products of ``abuse`` purchases in the store's packages; return how many are new."""
    at = at or datetime.now(UTC)
    have = {(k, v) for k, v in session.execute(select(WatchFlag.kind, WatchFlag.value))}
    new: dict[tuple[str, str], dict[str, Any]] = {}
    for merchant_n, merchant, product_n, product, category, package in _package_products(session, con):
        if category != "abuse":
            continue
        for kind, value, shown, what in (("merchant", merchant_n, merchant, "sold abuse products"),
                                         ("product", product_n, product, "labelled abuse")):
            if value and (kind, value) not in have and (kind, value) not in new:
                new[(kind, value)] = {"kind": kind, "value": value, "shown": shown, "source": "package",
                                      "package_ref": package, "reason": f"{what} in package {package}",
                                      "added_by": "ore watch", "added_at": at}
    if new:
        session.execute(insert(WatchFlag), list(new.values()))
    return len(new)


def flag(session: Session, kind: str, shown: str, *, by: str, reason: str, at: datetime | None = None) -> WatchFlag:
    """Flag a merchant or product (an analyst's decision, with its reason); re-flags one removed before."""
    from ore.watch.normalise import normalise

    if kind not in ("merchant", "product"):
        raise OreError(f"flag kind {kind!r}: merchant or product")
    if not (reason or "").strip():
        raise OreError("a flag records why: give --reason")
    value = normalise(kind, shown)
    if not value:
        raise OreError(f"{kind} {shown!r} has no letters or digits to match on")
    at = at or datetime.now(UTC)
    existing = session.scalar(select(WatchFlag).where(WatchFlag.kind == kind, WatchFlag.value == value))
    if existing is None:
        existing = WatchFlag(kind=kind, value=value, shown=shown.strip(), source="analyst", package_ref=None,
                             reason=reason.strip(), added_by=by, added_at=at)
        session.add(existing)
    elif existing.removed_at is not None:
        existing.removed_at = existing.removed_by = existing.removed_reason = None
        existing.source, existing.reason, existing.added_by, existing.added_at = "analyst", reason.strip(), by, at
    else:
        raise OreError(f"{kind} {existing.shown!r} is already flagged ({existing.reason})")
    session.flush()
    return existing


def unflag(session: Session, kind: str, shown: str, *, by: str, reason: str, at: datetime | None = None) -> WatchFlag:
    """Remove a flag, with the reason; a package's flag removed here is not re-added by later syncs."""
    from ore.watch.normalise import normalise

    if not (reason or "").strip():
        raise OreError("removing a flag records why: give --reason")
    value = normalise(kind, shown)
    existing = session.scalar(select(WatchFlag).where(WatchFlag.kind == kind, WatchFlag.value == value,
                                                      WatchFlag.removed_at.is_(None)))
    if existing is None:
        raise OreError(f"{kind} {shown!r} is not flagged")
    existing.removed_at, existing.removed_by, existing.removed_reason = at or datetime.now(UTC), by, reason.strip()
    session.flush()
    return existing


def flags(session: Session, *, removed: bool = False) -> list[WatchFlag]:
    q = select(WatchFlag).order_by(WatchFlag.kind, WatchFlag.value)
    if not removed:
        q = q.where(WatchFlag.removed_at.is_(None))
    return list(session.scalars(q))


__all__ = ["WATCHED", "SyncSummary", "Watchlist", "build", "flag", "flags", "product_categories", "sync_flags",
           "sync_subjects", "unflag"]
