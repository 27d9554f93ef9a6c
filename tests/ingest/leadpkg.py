"""Small lead packages built in a test's tmp_path, and ways to read a workspace back.

``write_package`` writes leads.csv (and optionally visits.csv) as given, bytes for
bytes, with a manifest whose hashes and row counts are right unless a test says
otherwise; ``lead`` is one valid row of leads.csv with any field overridden.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import duckdb

from ore.config import Settings
from ore.errors import PackageRejected
from ore.ingest.csvrows import count_rows
from ore.workspace import Workspace

LEADS_HEADER = [
    "record_id", "transaction_id", "transaction_time", "merchant", "product", "product_category", "amount",
    "currency", "status", "card_number", "card_expiry", "cardholder_name", "first_name", "last_name",
    "date_of_birth", "email", "username", "address_line1", "address_line2", "town", "postcode", "country",
    "ip_address", "ip_country", "phone",
]
VISITS_HEADER = ["username", "visit_time", "ip_address", "product"]


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass Luhn."""
    for check in "0123456789":
        digits = prefix + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


CARD = luhn_complete("411111111111111")  # 4111111111111111
CARD2 = luhn_complete("540715684524889")


def card(n: int) -> str:
    """The n-th distinct valid 16-digit test card."""
    return luhn_complete(f"4929{n:011d}")


def lead(i: int = 1, **fields: str) -> dict[str, str]:
    row = {
        "record_id": f"R{i:06d}",
        "transaction_id": f"T{i:08d}",
        "transaction_time": "2001-06-01T12:00:00",
        "merchant": "KEYZ AV SERVICES",
        "product": "SITE-01",
        "product_category": "abuse",
        "amount": "29.95",
        "currency": "USD",
        "status": "approved",
        "card_number": card(i),
        "card_expiry": "06/03",
        "cardholder_name": "JOHN SMITH",
        "first_name": "John",
        "last_name": "Smith",
        "date_of_birth": "1970-01-01",
        "email": f"user{i}@example.com",
        "username": f"user{i}",
        "address_line1": "1 High Street",
        "address_line2": "",
        "town": "Rye",
        "postcode": "TN31 7AA",
        "country": "GB",
        "ip_address": "10.0.0.1",
        "ip_country": "GB",
        "phone": "",
    }
    row.update(fields)
    return row


def csv_text(rows: list[dict[str, str]], header: list[str] | None = None, newline: str = "\n") -> str:
    header = header or LEADS_HEADER
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header])
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_package(
    directory: Path,
    leads: list[dict[str, str]] | str | bytes,
    *,
    visits: list[dict[str, str]] | str | bytes | None = None,
    package_id: str = "TEST-1",
    manifest: dict[str, Any] | None = None,
    rows: dict[str, int] | None = None,
) -> Path:
    """A package directory holding leads.csv (rows, text or raw bytes) and a correct manifest.

    ``rows`` overrides the manifest's row counts (to test a mismatch); by default they
    are counted the way ingest counts them, so the manifest never rejects a test's package.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for name, content, header in (("leads.csv", leads, LEADS_HEADER), ("visits.csv", visits, VISITS_HEADER)):
        if content is None:
            continue
        if isinstance(content, list):
            content = csv_text(content, header)
        data = content.encode("utf-8") if isinstance(content, str) else content
        (directory / name).write_bytes(data)
        n = (rows or {}).get(name)
        if n is None:
            try:
                n = count_rows(directory / name)
            except PackageRejected:  # the file is rejected anyway: leave that to the test
                n = 0
        files[name] = {"sha256": sha256(data), "rows": n}
    raw = {
        "format": "ore-lead-package",
        "version": 1,
        "package_id": package_id,
        "operation": "test",
        "source": "test",
        "received": "2002-05-20",
        "jurisdiction": "GB",
        "files": files,
    }
    raw.update(manifest or {})
    (directory / "manifest.json").write_text(json.dumps(raw), encoding="utf-8")
    return directory


def open_ws(root: Path, **settings: Any) -> Workspace:
    """A workspace at ``root`` with default settings except those given (no environment)."""
    return Workspace.open(root, Settings(workspace=root, **settings))


def query(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    if not ws.duckdb_path.exists():
        return []
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table_count(ws: Workspace, table: str) -> int:
    """Rows in ``table``, 0 when the table or the database does not exist yet."""
    if not ws.duckdb_path.exists():
        return 0
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchall()[0][0]
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] if exists else 0
    finally:
        con.close()


def quarantine(ws: Workspace) -> list[dict[str, Any]]:
    cols = ["file", "line", "record_id", "field", "reason", "row_masked"]
    rows = query(ws, f"SELECT {', '.join(cols)} FROM quarantine ORDER BY file, line")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def settings_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess or CliRunner: the workspace and nothing from the caller's ORE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORE_")}
    env["ORE_WORKSPACE"] = str(tmp_path)
    env.update(extra)
    return env
