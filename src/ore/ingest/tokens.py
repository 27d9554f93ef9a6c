"""Which key tokenises incoming cards, and what a key rotation keeps for the re-key.

Every stored ``card_token`` is made under one key version (``Workspace.card_key``), so
holdings, cases and resolve compare tokens by equality. After ``ore keys rotate`` new data
is tokenised under the old key *and* the new one: the stored token stays under the old key,
and the pair (old token, new token) of each card goes to ``card_token_next``. ``ore keys
rekey`` later swaps every stored token for its pair, so no clear card number is ever needed
at rest. Data loaded before the rotation has no pair until its source files are read again
(``ore reference load``, or ``ore ingest`` of the same package), which fills the pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ore.ingest.cards import Tokeniser
from ore.workspace import Workspace

NEXT_TABLE = "card_token_next"
NEXT_SQL = f"""CREATE TABLE IF NOT EXISTS {NEXT_TABLE} (
    token VARCHAR NOT NULL, key_version INTEGER NOT NULL,
    next_token VARCHAR NOT NULL, next_version INTEGER NOT NULL,
    PRIMARY KEY (token, key_version, next_version))"""


def tokeniser_for(ws: Workspace) -> Tokeniser:
    """The workspace's tokeniser: the stored tokens' key, and the new key too while a rotation is in progress."""
    version, key = ws.card_key()
    return Tokeniser(key, version, ws.next_card_key())


def keep_next_tokens(con: duckdb.DuckDBPyConnection, tokeniser: Tokeniser) -> int:
    """Store the (token, new-key token) pairs the tokeniser made, in ``con``'s transaction; returns how many."""
    if tokeniser.next_version is None or not tokeniser.pairs:
        return 0
    con.execute(NEXT_SQL)
    pairs = pa.table({"token": list(tokeniser.pairs), "next_token": list(tokeniser.pairs.values())})
    con.register("_ore_next_pairs", pairs)
    try:
        con.execute(f"""INSERT INTO {NEXT_TABLE}
                        SELECT token, $v, next_token, $n FROM _ore_next_pairs
                        ON CONFLICT DO NOTHING""", {"v": tokeniser.version, "n": tokeniser.next_version})
    finally:
        con.unregister("_ore_next_pairs")
    return len(pairs)


def learn_next_tokens(
    ws: Workspace, con: duckdb.DuckDBPyConnection, files: list[tuple[Any, Path, str]], *,
    package_id: str | None, mapping: Any = None,
) -> int:
    """Read files already loaded once more, only to pair their cards' tokens with the new key's.

    ``files`` holds (spec, path, label). The rows go to a scratch in-memory database and are
    dropped; only the pairs are kept, in ``con``. Does nothing outside a rotation.
    """
    from ore.ingest.package import load_file
    from ore.ingest.schema import RowChecker
    from ore.ingest.tables import create_schema

    tokeniser = tokeniser_for(ws)
    if tokeniser.next_version is None:
        return 0
    scratch = duckdb.connect()
    try:
        create_schema(scratch)
        for spec, path, label in files:
            if not any(c.kind == "card" for c in spec.columns):
                continue
            load_file(scratch, spec, path, RowChecker(spec, tokeniser), package_id=package_id,
                      settings=ws.settings, mapping=mapping if spec.file == "leads.csv" else None, label=label)
    finally:
        scratch.close()
    return keep_next_tokens(con, tokeniser)
