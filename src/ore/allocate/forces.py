"""Allocation: which force is responsible for a person, from the residence postcode.

The longest matching prefix of the routing table wins (``TN31`` beats ``TN``); an
ONS postcode lookup (NSPL, one row per postcode) loaded with ``--postcodes`` is
more specific still. A postcode that is foreign, malformed or not in the table
goes to the unallocated queue with the reason: never to a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ore.allocate.postcodes import compact, csv_fault, nspl_header, prefix_key, routing_keys, split
from ore.errors import OreError

NSPL_COLUMNS = ("pcds", "pfa")


@dataclass(frozen=True)
class Route:
    force_code: str | None
    force_name: str | None
    rule: str  # why: which prefix matched, or why none did


def load_nspl(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Load the ONS National Statistics Postcode Lookup as published (needs columns pcds and pfa).

    The file is read whole before ``ref_nspl`` is replaced, so a damaged file leaves the
    lookup loaded before it; a fault is an ``OreError`` naming the file and line.
    """
    path = Path(path)
    header = nspl_header(path)
    names = [h.strip().lower() for h in header]
    missing = [c for c in NSPL_COLUMNS if c not in names]
    if missing:
        raise OreError(f"{path.name}: line 1: column(s) {', '.join(missing)} missing (an NSPL file has pcds and pfa)")
    # the header as read here fixes the columns: DuckDB neither sniffs nor renames them
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    pcds, pfa = (f"c{names.index(c)}" for c in NSPL_COLUMNS)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _ore_nspl AS
            SELECT upper(regexp_replace({pcds}, '[^0-9A-Za-z]', '', 'g')) AS postcode, any_value({pfa}) AS pfa
            FROM read_csv(?, header = false, skip = 1, auto_detect = false, delim = ',', quote = '"',
                          escape = '"', columns = ?)
            WHERE {pcds} IS NOT NULL AND {pfa} IS NOT NULL AND {pfa} <> ''
            GROUP BY 1
            """,
            [str(path), columns],
        )
    except duckdb.Error as e:
        raise OreError(f"{path.name}: {csv_fault(e)}") from None
    try:
        con.execute("CREATE OR REPLACE TABLE ref_nspl (postcode VARCHAR PRIMARY KEY, pfa VARCHAR)")
        con.execute("INSERT INTO ref_nspl SELECT postcode, pfa FROM _ore_nspl")
    finally:
        con.execute("DROP TABLE IF EXISTS _ore_nspl")
    return con.execute("SELECT count(*) FROM ref_nspl").fetchall()[0][0]


class Router:
    """Routes postcodes through the prefix table (and NSPL when loaded)."""

    def __init__(self, prefixes: dict[str, tuple[str, str | None]], nspl: dict[str, str] | None = None) -> None:
        self.prefixes = {prefix_key(p): v for p, v in prefixes.items() if p.strip()}
        self.names = {code: name for code, name in self.prefixes.values()}
        self.nspl = nspl or {}

    @classmethod
    def from_tables(cls, con: duckdb.DuckDBPyConnection, postcodes: list[str]) -> Router:
        """A router over the loaded routing table, with the NSPL rows of just these postcodes."""
        rows = con.execute("SELECT prefix, force_code, force_name FROM ref_postcode_forces").fetchall()
        if not rows:
            raise OreError("no postcode routing table loaded: load reference holdings with postcode_forces.csv")
        nspl: dict[str, str] = {}
        has_nspl = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ref_nspl'"
        ).fetchall()[0][0]
        if has_nspl and postcodes:
            con.register("_ore_pcs", pa.table({"postcode": sorted({compact(p) for p in postcodes})}))
            try:
                nspl = dict(con.execute("SELECT n.postcode, n.pfa FROM ref_nspl n JOIN _ore_pcs USING (postcode)").fetchall())
            finally:
                con.unregister("_ore_pcs")
        return cls({p: (c, n) for p, c, n in rows}, nspl)

    def route(self, postcode: str | None, country: str | None = "GB") -> Route:
        if country and country.upper() not in ("GB", "UK"):
            return Route(None, None, f"address is outside the UK ({country}): not routed")
        if not postcode:
            return Route(None, None, "no postcode known")
        if split(postcode) is None:
            return Route(None, None, f"postcode {postcode!r} is not a valid UK postcode")
        code = self.nspl.get(compact(postcode))
        if code:
            return Route(code, self.names.get(code), f"postcode found in the ONS postcode lookup ({code})")
        for key in routing_keys(postcode):
            if key in self.prefixes:
                code, name = self.prefixes[key]
                return Route(code, name, f"postcode prefix {key} -> {code}")
        return Route(None, None, f"no routing prefix covers postcode {postcode!r}")
