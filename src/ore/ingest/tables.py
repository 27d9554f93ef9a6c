"""DuckDB tables written by ingest; later stages read them by these names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from ore.ingest.schema import LEADS, REFERENCE, VISITS, FileSpec, stored_columns

_ARROW = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
}

# Columns every stored row carries besides its spec's: where it came from.
_ORIGIN = (("package_id", "VARCHAR"), ("line", "BIGINT"))
_EXTRA = (("extra", "VARCHAR"),)  # unknown input columns, kept as JSON

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS packages (
    package_id VARCHAR PRIMARY KEY,
    operation VARCHAR, source VARCHAR, received DATE, jurisdiction VARCHAR,
    manifest VARCHAR NOT NULL,      -- the manifest as received (or as made for a bare export)
    fingerprint VARCHAR NOT NULL,   -- sha256 over the files' hashes: what makes a re-ingest a no-op
    ingested_at TIMESTAMP NOT NULL,
    mapping VARCHAR                 -- the column mapping applied, if any
);
CREATE TABLE IF NOT EXISTS ingest_files (
    package_id VARCHAR, file VARCHAR, sha256 VARCHAR,
    rows_read BIGINT, accepted BIGINT, quarantined BIGINT, warnings BIGINT,
    PRIMARY KEY (package_id, file)
);
CREATE TABLE IF NOT EXISTS quarantine (
    package_id VARCHAR, file VARCHAR, line BIGINT, record_id VARCHAR,
    field VARCHAR, reason VARCHAR, row_masked VARCHAR  -- the row as JSON, card numbers masked
);
CREATE TABLE IF NOT EXISTS ingest_warnings (
    package_id VARCHAR, file VARCHAR, line BIGINT, record_id VARCHAR, field VARCHAR, message VARCHAR
);
CREATE TABLE IF NOT EXISTS reference_loads (
    file VARCHAR PRIMARY KEY, sha256 VARCHAR, loaded_at TIMESTAMP,
    rows_read BIGINT, accepted BIGINT, quarantined BIGINT, warnings BIGINT
);
"""


def table_columns(spec: FileSpec, origin: bool) -> list[tuple[str, str]]:
    cols = list(_ORIGIN) if origin else [("line", "BIGINT")]
    return cols + stored_columns(spec) + list(_EXTRA)


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA_SQL)
    for spec in (LEADS, VISITS):
        cols = ", ".join(f"{n} {t}" for n, t in table_columns(spec, origin=True))
        con.execute(f"CREATE TABLE IF NOT EXISTS {spec.table} ({cols})")
    for spec in REFERENCE:
        cols = ", ".join(f"{n} {t}" for n, t in table_columns(spec, origin=False))
        con.execute(f"CREATE TABLE IF NOT EXISTS {spec.table} ({cols})")


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], rows: Iterable[dict[str, Any]]
) -> None:
    """Bulk insert through Arrow: one columnar batch instead of a statement per row."""
    rows = list(rows)
    if not rows:
        return
    con.register("_ore_batch", arrow_table(columns, rows))
    try:
        names = ", ".join(n for n, _ in columns)
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _ore_batch")
    finally:
        con.unregister("_ore_batch")


def arrow_table(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as one Arrow table with the stored columns' types (a missing key is NULL)."""
    return pa.table({n: pa.array([r.get(n) for r in rows], type=_ARROW[t]) for n, t in columns})
