"""Reading back and exporting quarantined rows."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ore.report.safecsv import safe_cell
from ore.workspace import Workspace

COLUMNS = ["line", "record_id", "reason", "file", "field", "package_id"]


def quarantined_rows(ws: Workspace, package_id: str | None = None) -> list[dict[str, Any]]:
    if not ws.duckdb_path.exists():
        return []
    with ws.duckdb(read_only=True) as con:
        sql = f"SELECT {', '.join(COLUMNS)} FROM quarantine"
        params: list[Any] = []
        if package_id:
            sql += " WHERE package_id = ?"
            params.append(package_id)
        cur = con.execute(sql + " ORDER BY file, line", params)
        return [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]


def write_quarantine_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            # record ids and reasons quote the sender's data: neutralise formulas for spreadsheets
            w.writerow([safe_cell(r[c]) for c in COLUMNS])
