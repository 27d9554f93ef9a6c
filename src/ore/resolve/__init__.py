"""Resolve: who each lead record names, and what the agency already holds on them.

``resolve(con, package_id, out_dir)`` reads the ingest tables (``leads``, ``ref_*``) and
writes ``resolved_records``, ``identified_persons`` and ``holding_links`` for the package
(docs/pipeline-tables.md), replacing the package's earlier rows. Two Splink models, each
trained without labels on the data at hand and saved as Splink's JSON in ``out_dir``:

- ``leads`` (``ore.resolve.leads``): deduplicates records into identified persons, the
  identity each record names (for a stolen card, its cardholder);
- ``holdings`` (``ore.resolve.holdings``): links each person to the register,
  convictions, employment and open cases; households are matched on the address.

The work runs in a private in-memory DuckDB connection (Splink's working tables never
touch the workspace file); only the three result tables are written back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ore.resolve.engine import ENGINES, Engine, make_engine
from ore.resolve.holdings import link_holdings, load_holdings, load_households
from ore.resolve.leads import dedupe_leads, load_leads, tidy
from ore.resolve.model import ModelSpec, TrainedModel, load_settings, train
from ore.resolve.standard import standardise

__all__ = ["ENGINES", "Engine", "ModelSpec", "ResolveSummary", "TrainedModel", "load_settings", "make_engine", "resolve",
           "standardise", "train"]

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS resolved_records (package_id VARCHAR, record_id VARCHAR, person_id VARCHAR);
CREATE TABLE IF NOT EXISTS identified_persons (
    package_id VARCHAR, person_id VARCHAR, first_name VARCHAR, last_name VARCHAR, display_name VARCHAR,
    date_of_birth DATE, address_line1 VARCHAR, town VARCHAR, postcode VARCHAR, record_count BIGINT);
CREATE TABLE IF NOT EXISTS holding_links (
    package_id VARCHAR, person_id VARCHAR, holding VARCHAR, ref VARCHAR,
    match_probability DOUBLE, match_weight DOUBLE, detail VARCHAR);
"""


@dataclass
class ResolveSummary:
    package_id: str
    records: int
    persons: int
    pairs_scored: int
    holding_links: dict[str, int] = field(default_factory=dict)
    models: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _format_postcode(pc: str | None) -> str | None:
    """``BS101LE`` -> ``BS10 1LE`` (UK form); anything else as it is."""
    if pc and 5 <= len(pc) <= 7 and pc[-3].isdigit():
        return f"{pc[:-3]} {pc[-3:]}"
    return pc


def resolve(con: duckdb.DuckDBPyConnection, package_id: str, out_dir: Path | None = None,
            engine: Engine | None = None) -> ResolveSummary:
    """Resolve one ingested package: records -> persons -> holdings links (see module doc); the
    pairs are scored on ``engine`` (``ore.resolve.engine``: DuckDB unless given)."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir) if out_dir is not None else None
    scon = duckdb.connect()  # Splink's own workspace
    try:
        n = load_leads(con, scon, package_id)
        res = dedupe_leads(scon, engine=engine)
        models = []
        if res.model is not None:
            models.append(res.model.save(out_dir, "splink_model_leads.json"))
        load_holdings(con, scon)
        load_households(con, scon)
        hmodel, _ = link_holdings(scon, engine=engine)
        if hmodel is not None:
            models.append(hmodel.save(out_dir, "splink_model_holdings.json"))
        records = scon.sql("SELECT record_id, person_id FROM lead_person ORDER BY record_id").to_arrow_table()
        persons = scon.sql("""
            SELECT b.person_id, b.first_name, b.last_name, d.display_name, b.date_of_birth, d.address_line1, d.town,
                   b.postcode, b.record_count
            FROM person_best b JOIN person_display d USING (person_id) ORDER BY person_id""").fetchall()
        links = scon.sql("SELECT * FROM holding_link ORDER BY person_id, holding, ref").to_arrow_table()
    finally:
        scon.close()

    cols = list(zip(*persons)) if persons else [[] for _ in range(9)]
    persons_tbl = pa.table({
        "person_id": pa.array(cols[0], pa.string()),
        "first_name": pa.array([tidy(v) for v in cols[1]], pa.string()),
        "last_name": pa.array([tidy(v) for v in cols[2]], pa.string()),
        "display_name": pa.array([tidy(v) for v in cols[3]], pa.string()),
        "date_of_birth": pa.array(cols[4], pa.date32()),
        "address_line1": pa.array([tidy(v) for v in cols[5]], pa.string()),
        "town": pa.array([tidy(v) for v in cols[6]], pa.string()),
        "postcode": pa.array([_format_postcode(v) for v in cols[7]], pa.string()),
        "record_count": pa.array(cols[8], pa.int64()),
    })
    con.execute(SCHEMA_SQL)
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("resolved_records", "identified_persons", "holding_links"):
            con.execute(f"DELETE FROM {table} WHERE package_id = ?", [package_id])
        con.register("_ore_rr", records)
        con.execute("INSERT INTO resolved_records SELECT ?, record_id, person_id FROM _ore_rr", [package_id])
        con.register("_ore_ip", persons_tbl)
        con.execute("""INSERT INTO identified_persons SELECT ?, person_id, first_name, last_name, display_name,
                       date_of_birth, address_line1, town, postcode, record_count FROM _ore_ip""", [package_id])
        con.register("_ore_hl", links)
        con.execute("""INSERT INTO holding_links SELECT ?, person_id, holding, ref, match_probability, match_weight,
                       detail FROM _ore_hl""", [package_id])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for v in ("_ore_rr", "_ore_ip", "_ore_hl"):
            try:
                con.unregister(v)
            except Exception:  # noqa: BLE001 - not registered when an earlier step failed
                pass
    counts: dict[str, int] = {}
    for holding in links.column("holding").to_pylist():
        counts[holding] = counts.get(holding, 0) + 1
    return ResolveSummary(
        package_id=package_id, records=n, persons=res.persons, pairs_scored=res.pairs_scored,
        holding_links=dict(sorted(counts.items())), models=[m for m in models if m is not None],
        seconds=round(time.perf_counter() - t0, 2),
    )
