"""Small hand-made DuckDB worlds for the corroborate tests.

The tables have the ingest schema (``ore.ingest.tables.create_schema``); ``resolved_records`` is a
stand-in for the resolve stage (the table contract only): by default each card is one person.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from ore.corroborate import corroborate
from ore.ingest.tables import create_schema

PKG = "T-1"
T0 = datetime(2001, 3, 1, 12, 0, 0)

LEAD_DEFAULTS: dict[str, Any] = {
    "product": "SITE-1",
    "product_category": "abuse",
    "amount": 29.95,
    "currency": "USD",
    "status": "approved",
    "country": "GB",
    "ip_country": "",
}


def lead(
    rid: str,
    card: str,
    name: str = "John Smith",
    *,
    t: datetime | None = None,
    days: float = 0,
    cardholder: str | None = None,
    email: str | None = None,
    username: str | None = None,
    ip: str = "81.2.3.4",
    **kw: Any,
) -> dict[str, Any]:
    first, _, last = name.partition(" ")
    user = username if username is not None else (first[:1] + last).lower()
    row = dict(LEAD_DEFAULTS)
    row.update(
        record_id=rid,
        card_token=card,
        transaction_time=(t or T0) + timedelta(days=days),
        first_name=first,
        last_name=last,
        cardholder_name=cardholder if cardholder is not None else name.upper(),
        email=email if email is not None else f"{user}@mail.example",
        username=user,
        ip_address=ip,
    )
    row.update(kw)
    return row


def visit(username: str, ip: str, days: float = 0, t: datetime | None = None, product: str = "SITE-1") -> dict[str, Any]:
    return {"username": username, "ip_address": ip, "visit_time": (t or T0) + timedelta(days=days), "product": product}


def build_db(
    leads: list[dict[str, Any]],
    visits: list[dict[str, Any]] | None = None,
    alerts: list[tuple[str, date, str]] | None = None,
    persons: dict[str, str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory database with the ingest tables and a stand-in ``resolved_records``.

    ``persons`` maps record_id -> person_id; records not named are resolved by card.
    Visits default to one visit far from everything (so that the log covers the period) unless given.
    """
    con = duckdb.connect(config={"threads": 1})  # tiny tables: one thread is fastest
    create_schema(con)
    for i, row in enumerate(leads):
        cols = ["package_id", "line", *row]
        con.execute(
            f"INSERT INTO leads ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [PKG, i + 2, *row.values()],
        )
    log = list(visits or [])
    # the access log's span: one unrelated visit well before and after every purchase
    log += [visit("zz-other", "10.0.0.1", days=-400), visit("zz-other", "10.0.0.1", days=400)]
    for i, v in enumerate(log):
        cols = ["package_id", "line", *v]
        con.execute(
            f"INSERT INTO visits ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [PKG, i + 2, *v.values()],
        )
    for i, (card, reported, kind) in enumerate(alerts or []):
        con.execute(
            "INSERT INTO ref_card_alerts (line, card_token, reported_on, alert_type) VALUES (?, ?, ?, ?)",
            [i + 2, card, reported, kind],
        )
    persons = persons or {}
    con.execute("CREATE TABLE resolved_records (package_id VARCHAR, record_id VARCHAR, person_id VARCHAR)")
    for row in leads:
        con.execute(
            "INSERT INTO resolved_records VALUES (?, ?, ?)",
            [PKG, row["record_id"], persons.get(row["record_id"], "P-" + row["card_token"])],
        )
    return con


def run(con: duckdb.DuckDBPyConnection, policy: Any = None):
    return corroborate(con, PKG, policy)


def fired(con: duckdb.DuckDBPyConnection, code: str) -> set[str]:
    rows = con.execute(
        "SELECT record_id FROM record_indicators WHERE package_id = ? AND code = ?", [PKG, code]
    ).fetchall()
    return {r[0] for r in rows}


def evidence(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    rows = con.execute(
        "SELECT record_id, fraud_score, fraud_suspected, indicators, subject_id FROM record_evidence "
        "WHERE package_id = ?",
        [PKG],
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def persons(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    rows = con.execute(
        "SELECT person_id, evidence_grade, likely_victim, grade_reasons FROM person_evidence WHERE package_id = ?",
        [PKG],
    ).fetchall()
    return {r[0]: r[1:] for r in rows}
