"""Card-token key management: rotate to a new key version, re-key the data, retire the old key.

A token is a keyed HMAC of the card number, and no clear number is kept, so a token cannot
be converted from one key to another. A rotation therefore runs in three steps:

1. ``rotate`` adds ``keys/card-v(N+1).key``. From then on every card that arrives is
   tokenised under both keys: the stored token stays under the old key (so it still
   equals the tokens of holdings and cases), and its new-key twin is kept aside
   (``ore.ingest.tokens``).
2. Data held from before the rotation gets its twins when its source is read again
   (``ore reference load DIR`` for holdings, ``ore ingest PACKAGE`` for a package).
   ``rekey`` then swaps every stored token, in the bulk tables and the case store, for its
   twin; it refuses, naming what lacks a twin, until every token has one.
3. ``retire`` deletes an old key file once nothing is tokenised under it.

Each step writes an audit entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import bindparam, func, select, update

from ore.errors import OreError
from ore.ingest.cards import key_fingerprint
from ore.ingest.tokens import NEXT_SQL, NEXT_TABLE
from ore.workspace import Workspace


@dataclass(frozen=True)
class KeyVersion:
    version: int
    fingerprint: str
    created: str
    role: str  # "tokenising", "new (dual tokenisation)", "unused"
    rows: dict[str, int]  # where its tokens are: table -> rows


@dataclass
class KeyStatus:
    tokenising: int
    newest: int
    versions: list[KeyVersion] = field(default_factory=list)
    # during a rotation: what still has no twin under the newest key (place -> rows)
    unpaired: dict[str, int] = field(default_factory=dict)

    @property
    def rotating(self) -> bool:
        return self.newest > self.tokenising

    def to_dict(self) -> dict[str, Any]:
        return {"tokenising": self.tokenising, "newest": self.newest, "rotating": self.rotating,
                "versions": [v.__dict__ for v in self.versions], "unpaired": self.unpaired}


@contextmanager
def _session(ws: Workspace) -> Iterator[Any]:
    """A system session on the workspace's case store, whose engine is disposed after."""
    from ore.store import store_for

    store = store_for(ws)
    try:
        with store.session() as s:
            yield s
    finally:
        store.dispose()


def _token_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bulk tables holding card tokens with their key version (leads, card alerts, ...)."""
    rows = con.execute("""SELECT table_name FROM information_schema.columns
                          WHERE table_schema = 'main' AND column_name IN ('card_token', 'card_key_version')
                          GROUP BY table_name HAVING count(*) = 2 ORDER BY table_name""").fetchall()
    return [r[0] for r in rows]


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
                .fetchall()[0][0])


def _bulk_usage(ws: Workspace) -> dict[int, dict[str, int]]:
    usage: dict[int, dict[str, int]] = {}
    if not ws.duckdb_path.exists():
        return usage
    with ws.duckdb(read_only=True) as con:
        for t in _token_tables(con):
            for v, n in con.execute(f"SELECT card_key_version, count(*) FROM {t} WHERE card_token IS NOT NULL "
                                    "GROUP BY 1").fetchall():
                usage.setdefault(int(v), {})[t] = int(n)
    return usage


def _store_usage(ws: Workspace) -> dict[int, int]:
    from ore.store.models import Record

    with _session(ws) as s:
        rows = s.execute(select(Record.card_key_version, func.count()).where(Record.card_token.is_not(None))
                         .group_by(Record.card_key_version)).all()
    return {int(v): int(n) for v, n in rows if v is not None}


def _unpaired_bulk(con: duckdb.DuckDBPyConnection, old: int, new: int) -> dict[str, int]:
    """Rows tokenised under ``old`` whose token has no twin under ``new``, by table (and package)."""
    out: dict[str, int] = {}
    paired = (f"(SELECT token FROM {NEXT_TABLE} WHERE key_version = {old} AND next_version = {new})"
              if _has_table(con, NEXT_TABLE) else "(SELECT NULL::VARCHAR WHERE false)")
    for t in _token_tables(con):
        cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                          [t]).fetchall()}
        by = "package_id" if "package_id" in cols else "NULL"
        for place, n in con.execute(f"""SELECT {by}, count(*) FROM {t}
                                        WHERE card_key_version = {old} AND card_token IS NOT NULL
                                          AND card_token NOT IN {paired} GROUP BY 1 ORDER BY 1""").fetchall():
            out[f"{t} (package {place})" if place is not None else t] = int(n)
    return out


def _pairs_for(ws: Workspace, tokens: list[str], old: int, new: int) -> dict[str, str]:
    """The twins under ``new`` of ``tokens`` (under ``old``) that are known."""
    if not tokens or not ws.duckdb_path.exists():
        return {}
    with ws.duckdb(read_only=True) as con:
        if not _has_table(con, NEXT_TABLE):
            return {}
        con.register("_ore_wanted", pa.table({"token": tokens}))
        rows = con.execute(f"""SELECT n.token, n.next_token FROM {NEXT_TABLE} n JOIN _ore_wanted w USING (token)
                               WHERE n.key_version = ? AND n.next_version = ?""", [old, new]).fetchall()
    return dict(rows)


def _store_tokens(ws: Workspace, version: int) -> list[str]:
    from ore.store.models import Record

    with _session(ws) as s:
        return list(s.scalars(select(Record.card_token).where(Record.card_key_version == version,
                                                              Record.card_token.is_not(None)).distinct()))


def status(ws: Workspace) -> KeyStatus:
    """Every key version: its fingerprint, its role, and how many stored tokens are made under it."""
    files = ws.card_key_files()
    if not files:
        raise OreError(f"workspace {ws.root} holds no card key yet: the first ingest makes keys/card-v1.key")
    keys = ws.card_keys()
    tokenising = ws.tokenising_version()
    newest = max(files)
    bulk, store = _bulk_usage(ws), _store_usage(ws)
    st = KeyStatus(tokenising, newest)
    for v, path in files.items():
        rows = dict(bulk.get(v, {}))
        if store.get(v):
            rows["case store records"] = store[v]
        role = ("tokenising" if v == tokenising else "new (dual tokenisation)" if v == newest > tokenising
                else "in use" if rows else "unused")
        created = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        st.versions.append(KeyVersion(v, key_fingerprint(keys[v]), created, role, rows))
    if st.rotating:
        st.unpaired = _unpaired(ws, tokenising, newest)
    return st


def _unpaired(ws: Workspace, old: int, new: int) -> dict[str, int]:
    out: dict[str, int] = {}
    if ws.duckdb_path.exists():
        with ws.duckdb(read_only=True) as con:
            out.update(_unpaired_bulk(con, old, new))
    tokens = _store_tokens(ws, old)
    missing = len(set(tokens) - set(_pairs_for(ws, tokens, old, new)))
    if missing:
        out["case store records (distinct cards)"] = missing
    return out


def rotate(ws: Workspace, *, user: str, purpose: str = "administration") -> int:
    """Add the next key version; new data is tokenised under it as well as under the stored tokens' key."""
    with ws.lock("keys rotate"):
        if not ws.has_card_key() and ws.duckdb_path.exists():
            raise OreError(f"workspace {ws.root} holds data but no card key: restore keys/ from the key backup "
                           "first; a rotation from a new key would leave every token held unmatched")
        ws.card_key()  # a workspace with no key yet gets version 1 first
        version = ws.add_card_key()
        _audit(ws, user=user, action="keys.rotate", purpose=purpose,
               detail={"version": version, "fingerprint": key_fingerprint(ws.card_keys()[version]),
                       "tokenising": ws.tokenising_version()})
    return version


@dataclass(frozen=True)
class RekeyResult:
    old: int
    new: int
    rows: dict[str, int]  # place -> rows whose token was swapped


def rekey(ws: Workspace, *, user: str, purpose: str = "administration") -> RekeyResult:
    """Swap every stored token for its twin under the newest key; refuses while any token has none.

    Re-running after an interruption finishes the job: only tokens still under the old
    version are swapped, and the stored tokens' version is recorded only at the end.
    """
    from ore.store.models import Record

    with ws.lock("keys rekey"):
        old = ws.tokenising_version()
        nxt = ws.next_card_key()
        if nxt is None:
            raise OreError(f"nothing to re-key: every card token is under key version {old}, the newest "
                           "(`ore keys rotate` starts a rotation)")
        new = nxt[0]
        missing = _unpaired(ws, old, new)
        if missing:
            where = "; ".join(f"{place}: {n:,}" for place, n in missing.items())
            raise OreError(
                f"cannot re-key yet: tokens under key version {old} without a twin under version {new} ({where}). "
                "No clear card number is kept, so their sources must be read again under the new key: "
                "`ore reference load DIR` for holdings, `ore ingest PACKAGE` (the same package) for leads; "
                "then run `ore keys rekey` again.")
        swapped: dict[str, int] = {}
        tokens = _store_tokens(ws, old)
        pairs = _pairs_for(ws, tokens, old, new)
        with ws.duckdb() as con:
            con.execute(NEXT_SQL)
            con.execute("BEGIN TRANSACTION")
            try:
                for t in _token_tables(con):
                    n = con.execute(f"""UPDATE {t} SET card_token = p.next_token, card_key_version = p.next_version
                                        FROM {NEXT_TABLE} p
                                        WHERE {t}.card_key_version = ? AND p.key_version = ? AND p.next_version = ?
                                          AND p.token = {t}.card_token""", [old, old, new]).fetchall()[0][0]
                    if n:
                        swapped[t] = int(n)
                with _session(ws) as s:
                    # every record under the old key has its twin (checked above): one statement, many rows
                    n_rec = s.scalar(select(func.count()).select_from(Record).where(
                        Record.card_key_version == old, Record.card_token.is_not(None))) or 0
                    t = Record.__table__
                    if pairs:
                        s.execute(update(t).where(t.c.card_token == bindparam("old_token"),
                                                  t.c.card_key_version == old)
                                  .values(card_token=bindparam("new_token"), card_key_version=new),
                                  [{"old_token": a, "new_token": b} for a, b in pairs.items()])
                    if n_rec:
                        swapped["case store records"] = n_rec
                    _record(s, user=user, action="keys.rekey", category="alteration", purpose=purpose,
                            detail={"from_version": old, "to_version": new, "rows": swapped})
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        ws.set_tokenising_version(new)
    return RekeyResult(old, new, swapped)


def retire(ws: Workspace, version: int, *, user: str, purpose: str = "administration") -> None:
    """Delete key ``version``; refuses while it tokenises, is the key being rotated to, or any token is under it."""
    with ws.lock("keys retire"):
        files = ws.card_key_files()
        if version not in files:
            raise OreError(f"there is no key version {version} (present: {', '.join(map(str, files)) or 'none'})")
        tokenising = ws.tokenising_version()
        if version == tokenising:
            raise OreError(f"key version {version} tokenises the stored card tokens; rotate and re-key first "
                           "(`ore keys rotate`, `ore keys rekey`)")
        if version > tokenising:
            raise OreError(f"key version {version} is the key being rotated to; `ore keys rekey` moves the data to "
                           "it. A rotation is not undone by retiring its new key.")
        used = dict(_bulk_usage(ws).get(version, {}))
        if n := _store_usage(ws).get(version):
            used["case store records"] = n
        if used:
            where = ", ".join(f"{t}: {n:,}" for t, n in used.items())
            raise OreError(f"key version {version} is still in use ({where}); `ore keys rekey` first")
        fingerprint = key_fingerprint(ws.card_keys()[version])
        _audit(ws, user=user, action="keys.retire", purpose=purpose,
               detail={"version": version, "fingerprint": fingerprint})
        if ws.duckdb_path.exists():
            with ws.duckdb() as con:
                if _has_table(con, NEXT_TABLE):
                    con.execute(f"DELETE FROM {NEXT_TABLE} WHERE key_version = ? OR next_version = ?",
                                [version, version])
        os.unlink(files[version])


def _audit(ws: Workspace, *, user: str, action: str, purpose: str, detail: dict[str, Any]) -> None:
    with _session(ws) as s:
        _record(s, user=user, action=action, category="access", purpose=purpose, detail=detail)


def _record(s: Any, *, user: str, action: str, category: str, purpose: str, detail: dict[str, Any]) -> None:
    from ore.audit import record

    record(s, user=user, action=action, category=category, objects=[f"card-key:v{detail.get('version', '')}"]
           if "version" in detail else ["card-keys"], purpose=purpose, detail=detail)
