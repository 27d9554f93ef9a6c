"""Shared helpers for the mapping, XLSX and suggestion tests: the samples, and reading a workspace back."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ore.workspace import Workspace

from shared_paths import SAMPLES  # noqa: E402
FOREIGN = SAMPLES / "foreign-1" / "transactions.csv"
CANONICAL = SAMPLES / "public-1" / "package" / "leads.csv"

# Stored columns of the leads table compared between a mapped and a canonical ingest.
COMPARED = [
    "line", "transaction_id", "transaction_time", "merchant", "product", "product_category", "amount",
    "currency", "status", "card_token", "card_key_version", "card_masked", "card_last4", "card_expiry",
    "cardholder_name", "first_name", "last_name", "date_of_birth", "email", "username", "address_line1",
    "address_line2", "town", "postcode", "country", "ip_address", "ip_country", "phone", "extra",
]


def first_canonical_rows(tmp: Path, n: int = 1000) -> Path:
    """The header and first ``n`` rows of the canonical sample, as a bare CSV export."""
    with CANONICAL.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))[: n + 1]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = tmp / "leads.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def query(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with ws.duckdb() as con:
        return con.execute(sql, params or []).fetchall()


def leads(ws: Workspace, package_id: str) -> dict[str, dict[str, Any]]:
    """Stored leads of one package by record_id."""
    with ws.duckdb() as con:
        cur = con.execute("SELECT * FROM leads WHERE package_id = ? ORDER BY line", [package_id])
        names = [d[0] for d in cur.description]
        return {r[names.index("record_id")]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def quarantine(ws: Workspace, package_id: str) -> list[tuple[Any, ...]]:
    """(line, field, reason) of one package's quarantined rows."""
    return query(ws, "SELECT line, field, reason FROM quarantine WHERE package_id = ? ORDER BY line", [package_id])
