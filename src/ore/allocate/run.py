"""Writes ``person_force`` for a package from the resolved persons' residence postcodes."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ore.allocate.forces import Router


def allocate(con: duckdb.DuckDBPyConnection, package_id: str) -> dict[str, int]:
    """Route every identified person of the package; returns counts (allocated, unallocated)."""
    people = con.execute(
        """
        WITH c AS (
            SELECT r.person_id, mode(l.country) AS country
            FROM resolved_records r JOIN leads l USING (package_id, record_id)
            WHERE r.package_id = ? GROUP BY r.person_id)
        SELECT p.person_id, p.postcode, c.country
        FROM identified_persons p LEFT JOIN c USING (person_id)
        WHERE p.package_id = ? ORDER BY p.person_id
        """,
        [package_id, package_id],
    ).fetchall()
    router = Router.from_tables(con, [pc for _, pc, _ in people if pc])
    routes = [(pid, router.route(pc, country)) for pid, pc, country in people]
    con.execute(
        "CREATE TABLE IF NOT EXISTS person_force (package_id VARCHAR, person_id VARCHAR, force_code VARCHAR,"
        " force_name VARCHAR, rule VARCHAR)"
    )
    con.execute("DELETE FROM person_force WHERE package_id = ?", [package_id])
    batch = pa.table(
        {
            "package_id": [package_id] * len(routes),
            "person_id": [p for p, _ in routes],
            "force_code": [r.force_code for _, r in routes],
            "force_name": [r.force_name for _, r in routes],
            "rule": [r.rule for _, r in routes],
        }
    )
    con.register("_ore_routes", batch)
    try:
        con.execute("INSERT INTO person_force SELECT * FROM _ore_routes")
    finally:
        con.unregister("_ore_routes")
    allocated = sum(1 for _, r in routes if r.force_code)
    return {"allocated": allocated, "unallocated": len(routes) - allocated}
