"""The triage output files (spec/triage-output.md): records.csv, persons.csv, quarantine.csv.

Written from the stage tables, in a stable order, through a temporary file and a
rename so that a reader never sees half a file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

RECORD_COLUMNS = ["record_id", "person_id", "subject_id", "fraud_suspected", "fraud_indicators"]
PERSON_COLUMNS = [
    "person_id", "kind", "display_name", "date_of_birth", "postcode", "force_code", "evidence_grade",
    "likely_victim", "priority", "priority_reasons", "register_ref", "conviction_refs", "employment_refs",
    "children_in_household", "open_case_refs", "record_count",
]
QUARANTINE_COLUMNS = ["line", "record_id", "reason", "file", "field"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([_cell(v) for v in row])
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n


def records_rows(con: duckdb.DuckDBPyConnection, package_id: str) -> list[tuple[Any, ...]]:
    return con.execute(
        """
        SELECT l.record_id, r.person_id, e.subject_id, coalesce(e.fraud_suspected, false), e.indicators
        FROM leads l
        LEFT JOIN resolved_records r USING (package_id, record_id)
        LEFT JOIN record_evidence e USING (package_id, record_id)
        WHERE l.package_id = ?
        ORDER BY l.line
        """,
        [package_id],
    ).fetchall()


def persons_rows(con: duckdb.DuckDBPyConnection, package_id: str, min_probability: float,
                 deconflict_probability: float | None = None) -> list[tuple[Any, ...]]:
    """One row per person; open cases are listed from ``deconflict_probability`` up (a call to
    the force that holds one costs little), every other holding from ``min_probability``."""
    return con.execute(
        """
        WITH links AS (
            SELECT person_id, holding, string_agg(DISTINCT ref, ';' ORDER BY ref) AS refs
            FROM holding_links
            WHERE package_id = $1 AND holding <> 'households'
              AND match_probability >= CASE WHEN holding = 'open_cases' THEN $3 ELSE $2 END
            GROUP BY person_id, holding),
        kids AS (
            SELECT h.person_id, max(x.children_under_18) AS children
            FROM holding_links h JOIN ref_households x ON concat_ws('|', x.address_line1, x.postcode) = h.ref
            WHERE h.package_id = $1 AND h.holding = 'households' AND h.match_probability >= $2
            GROUP BY h.person_id),
        by_holding AS (
            SELECT person_id,
                   max(refs) FILTER (WHERE holding = 'register') AS register_ref,
                   max(refs) FILTER (WHERE holding = 'convictions') AS conviction_refs,
                   max(refs) FILTER (WHERE holding = 'employment') AS employment_refs,
                   max(refs) FILTER (WHERE holding = 'open_cases') AS open_case_refs
            FROM links GROUP BY person_id)
        SELECT p.person_id, 'identified', p.display_name, p.date_of_birth, coalesce(f.postcode, p.postcode), f.force_code,
               e.evidence_grade, coalesce(e.likely_victim, false), a.priority, a.reasons,
               v.register_ref, v.conviction_refs, v.employment_refs, k.children, v.open_case_refs, p.record_count
        FROM identified_persons p
        LEFT JOIN person_evidence e ON e.package_id = p.package_id AND e.person_id = p.person_id
        LEFT JOIN person_priority a ON a.package_id = p.package_id AND a.person_id = p.person_id
        LEFT JOIN person_force f ON f.package_id = p.package_id AND f.person_id = p.person_id
        LEFT JOIN by_holding v ON v.person_id = p.person_id
        LEFT JOIN kids k ON k.person_id = p.person_id
        WHERE p.package_id = $1
        UNION ALL
        SELECT s.subject_id, 'unidentified', s.display_name, NULL, NULL, NULL, NULL, false, a.priority, a.reasons,
               NULL, NULL, NULL, NULL, NULL, s.record_count
        FROM unidentified_subjects s
        LEFT JOIN person_priority a ON a.package_id = s.package_id AND a.person_id = s.subject_id
        WHERE s.package_id = $1
        ORDER BY 1
        """,
        [package_id, min_probability, min_probability if deconflict_probability is None else deconflict_probability],
    ).fetchall()


def quarantine_rows(con: duckdb.DuckDBPyConnection, package_id: str) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT line, record_id, reason, file, field FROM quarantine WHERE package_id = ? ORDER BY file, line",
        [package_id],
    ).fetchall()


def write_parquet(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """The rows of a CSV output as Parquet, for a cluster's next job: the same columns and values
    (booleans ``true``/``false``, lists ``;``-separated), every column text, an empty cell null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cells = [[_cell(row[i]) or None for row in rows] for i in range(len(columns))]
    table = pa.table({c: pa.array(v, type=pa.string()) for c, v in zip(columns, cells, strict=True)})
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_outputs(con: duckdb.DuckDBPyConnection, package_id: str, out: Path, min_probability: float,
                  deconflict_probability: float | None = None, *, parquet: bool = False) -> dict[str, int]:
    """records.csv, persons.csv and quarantine.csv; with ``parquet`` (the Spark engine) also
    records.parquet and persons.parquet from the same rows."""
    out.mkdir(parents=True, exist_ok=True)
    records = records_rows(con, package_id)
    persons = persons_rows(con, package_id, min_probability, deconflict_probability)
    if parquet:
        write_parquet(out / "records.parquet", RECORD_COLUMNS, records)
        write_parquet(out / "persons.parquet", PERSON_COLUMNS, persons)
    return {
        "records": write_csv(out / "records.csv", RECORD_COLUMNS, records),
        "persons": write_csv(out / "persons.csv", PERSON_COLUMNS, persons),
        "quarantine": write_csv(out / "quarantine.csv", QUARANTINE_COLUMNS, quarantine_rows(con, package_id)),
    }
