"""Writes ``person_force`` for a package from the resolved persons' residence postcodes.

Each person's residence is found by SQL over their records on a ``StageSQL`` (DuckDB, or Spark
SQL); routing a postcode to a force is Python (``forces.Router``), one lookup per person.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ore.allocate.forces import Router
from ore.allocate.postcodes import pretty
from ore.stagesql import DuckDBSQL, StageSQL, lit, replace_package_rows


# Distinct persons on one postcode beyond which it is not taken as anyone's home. A postcode covers
# about fifteen addresses, and only a tiny share of residents appear in any package.
SHARED_POSTCODE_PERSONS = 5


def allocate(con: duckdb.DuckDBPyConnection, package_id: str, sql: StageSQL | None = None) -> dict[str, int]:
    """Route every identified person of the package into the workspace ``con``; returns counts
    (allocated, unallocated). The residences' SQL runs on ``sql`` (the workspace's DuckDB unless given)."""
    # Residence: the address of the person's latest own purchase (people move), ignoring records
    # that look like someone else's use of the card and postcodes shared by so many people in the
    # package that they cannot be one home (a mail drop, a processor's default); then any own
    # record; then the resolved best-known postcode. Of two records at one time, the later
    # record_id counts (a struct key: the same choice on every engine).
    sql = sql or DuckDBSQL(con)
    sql.inputs(package_id, "resolved_records", "leads", "record_evidence", "identified_persons")
    pkg = lit(package_id)
    latest = "struct_pack(t := transaction_time, r := record_id)"
    people = sql.rows(
        f"""
        WITH recs AS (
            SELECT r.person_id, r.record_id, l.postcode, l.country, l.transaction_time,
                   NOT coalesce(e.fraud_suspected, false) AS own,
                   upper(regexp_replace(l.postcode, '[^0-9A-Za-z]', '', 'g')) AS key
            FROM resolved_records r
            JOIN leads l USING (package_id, record_id)
            LEFT JOIN record_evidence e USING (package_id, record_id)
            WHERE r.package_id = {pkg} AND l.postcode IS NOT NULL),
        crowd AS (SELECT key, count(DISTINCT person_id) >= {SHARED_POSTCODE_PERSONS} AS shared FROM recs GROUP BY key),
        -- the commonest country of the person's records (of two as common, the first by name)
        countries AS (SELECT person_id, country, count(*) AS n FROM recs WHERE country IS NOT NULL GROUP BY ALL),
        usual AS (SELECT person_id, arg_min(country, struct_pack(n := -n, c := country)) AS country
                  FROM countries GROUP BY person_id),
        best AS (
            SELECT person_id,
                   arg_max(postcode, {latest}) FILTER (WHERE own AND NOT shared) AS home,
                   arg_max(country, {latest}) FILTER (WHERE own AND NOT shared) AS home_country,
                   arg_max(postcode, {latest}) FILTER (WHERE own) AS own_postcode,
                   arg_max(country, {latest}) FILTER (WHERE own) AS own_country
            FROM recs JOIN crowd USING (key) GROUP BY person_id)
        SELECT p.person_id, coalesce(b.home, b.own_postcode, p.postcode),
               coalesce(b.home_country, b.own_country, u.country)
        FROM identified_persons p LEFT JOIN best b USING (person_id) LEFT JOIN usual u USING (person_id)
        WHERE p.package_id = {pkg} ORDER BY p.person_id
        """
    )
    router = Router.from_tables(con, [pc for _, pc, _ in people if pc])
    routes = [(pid, router.route(pc, country)) for pid, pc, country in people]
    postcodes = [pretty(pc) or pc for _, pc, _ in people]
    con.execute(
        "CREATE TABLE IF NOT EXISTS person_force (package_id VARCHAR, person_id VARCHAR, postcode VARCHAR,"
        " force_code VARCHAR, force_name VARCHAR, rule VARCHAR)"
    )
    batch = pa.table(
        {
            "package_id": [package_id] * len(routes),
            "person_id": [p for p, _ in routes],
            "postcode": postcodes,
            "force_code": [r.force_code for _, r in routes],
            "force_name": [r.force_name for _, r in routes],
            "rule": [r.rule for _, r in routes],
        }
    )
    replace_package_rows(con, "person_force", package_id, batch)
    allocated = sum(1 for _, r in routes if r.force_code)
    return {"allocated": allocated, "unallocated": len(routes) - allocated}
