"""Where a feed is matched against the watchlists: one interface, a DuckDB engine and a Spark engine.

The screen hands an engine the feed file, the watchlists (small Arrow tables) and the card
keys; the engine reads and checks the feed, tokenises raw card numbers, and returns only
the rows that matter: purchases by a watched person (with whom they matched and on
what) and purchases from a flagged merchant or product, with every problem found. The
screen then decides alerts and leads in Python and writes them in one transaction, so an
engine never touches the case store and two engines must agree on the rows they return.

- ``duckdb`` (default): embedded; the feed is read through a view and only its match keys are
  kept (``feed_keys``); the card match is an exact semi-join on the token as 32 bytes
  (``feed_keys.token IN watch_cards``), emails and account names the same on their
  normalised forms, flags on the normalised merchant and product (per distinct name).
- ``spark`` (``ore.watch.spark_engine``, the ``spark`` extra): the same SQL on Spark, for a
  feed larger than one machine. The rules are written once: the feed's reading in
  ``ore.watch.feed.feed_select``, the matches here (``match_sql``, ``flagged_sql``), each in
  SQL both engines run, with the few constructs they spell differently behind a ``dialect``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from ore.errors import OreError
from ore.watch import feed as feeds
from ore.watch.cards import digest_array
from ore.watch.normalise import descriptor_sql
from ore.watch.watchlist import Watchlist

ENGINES = ("duckdb", "spark")
SEP = "\x1f"  # unit separator between the fields of a row's identity


@dataclass
class Matches:
    """What an engine found in a feed."""

    rows: dict[int, dict[str, Any]]  # line -> the row's shown values, its identity and (raw feeds) card digits
    hits: list[tuple[int, int, str]]  # (line, subject_id, matched_on "card,email")
    flagged: dict[int, tuple[str, int]]  # line -> (merchant | product, flag_id)
    problems: list[tuple[int, str, str]]  # (line, field, message)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def screen(self, feed: feeds.Feed, watchlist: Watchlist, keys: dict[int, bytes], current_key: int,
               tmp: Path, workers: int | None = None) -> Matches: ...


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (Spark's module, and pyspark, are imported only when it is asked for)."""
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        from ore.watch.spark_engine import SparkEngine

        return SparkEngine()
    raise OreError(f"--engine {name!r}: one of {', '.join(ENGINES)}")


def needed_keys(keys: dict[int, bytes], watchlist: Watchlist, current_key: int) -> dict[int, bytes]:
    """The card keys a raw feed is tokenised under: every version the watchlist's tokens were made under, and
    the current one (which names the feed's cards in alerts)."""
    versions = sorted(set(watchlist.key_versions) | {current_key})
    for v in versions:
        if v not in keys:
            raise OreError(f"the watchlist holds card tokens made under key version {v}, but keys/card-v{v}.key "
                           "is not in this workspace: restore it from the operator's backup")
    return {v: keys[v] for v in versions}


def connect(tmp: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one screen, spilling (raw card numbers included) only into the workspace's tmp."""
    con = duckdb.connect()
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = '{str(tmp).replace(chr(39), chr(39) * 2)}'")
    return con


def register_watchlist(con: duckdb.DuckDBPyConnection, watchlist: Watchlist) -> None:
    """The watchlists as the engine's tables; card tokens as their 32 bytes, as the feed's are kept."""
    for name in ("emails", "usernames", "merchants", "products"):
        con.register(f"watch_{name}", getattr(watchlist, name))
    con.register("_watch_cards", watchlist.cards)
    con.execute(f"CREATE OR REPLACE TABLE watch_cards AS {watch_cards_sql('_watch_cards')}")
    con.unregister("_watch_cards")


def watch_cards_sql(source: str, dialect: str = "duckdb") -> str:
    """The watched card tokens as their 32 bytes (a token not of 64 hex characters can match nothing)."""
    return (f"SELECT subject_id, unhex(token) AS token, key_version FROM {source} "
            f"WHERE {feeds.full_match('token', '[0-9a-f]{64}', dialect)}")


def match_sql(card_input: str) -> str:
    """(line, subject_id, matched_on) of every feed row carrying a watched identifier, over ``feed_keys``,
    ``watch_*`` and (raw feeds) ``card_tokens``; the same SQL for both engines."""
    if card_input == "number":
        # the semi-join runs on the distinct numbers' tokens, then back to the rows holding a hit
        card = """SELECT f.line, h.subject_id, 'card' AS kind
                  FROM (SELECT DISTINCT t.card_digits, w.subject_id
                        FROM (SELECT * FROM card_tokens WHERE token_bin IN (SELECT token FROM watch_cards)) t
                        JOIN watch_cards w ON w.token = t.token_bin
                             AND (w.key_version IS NULL OR w.key_version = t.key_version)) h
                  JOIN feed_keys f ON f.card_digits = h.card_digits"""
    elif card_input == "token":
        card = """SELECT f.line, w.subject_id, 'card' AS kind
                  FROM (SELECT line, token, card_key_version FROM feed_keys
                        WHERE token IN (SELECT token FROM watch_cards)) f
                  JOIN watch_cards w ON w.token = f.token
                       AND (f.card_key_version IS NULL OR w.key_version IS NULL
                            OR f.card_key_version = w.key_version)"""
    else:
        card = "SELECT CAST(NULL AS BIGINT) AS line, CAST(NULL AS BIGINT) AS subject_id, 'card' AS kind WHERE false"
    contact = """SELECT f.line, w.subject_id, '{kind}' AS kind
                 FROM (SELECT line, {col} FROM feed_keys WHERE {col} IN (SELECT value FROM watch_{table})) f
                 JOIN watch_{table} w ON w.value = f.{col}"""
    # the kinds in name order, each once (concat_ws skips the NULLs)
    kinds = ", ".join(f"max(CASE WHEN kind = '{k}' THEN '{k}' END)" for k in ("card", "email", "username"))
    return f"""
        SELECT line, subject_id, concat_ws(',', {kinds}) AS matched_on
        FROM ({card}
              UNION ALL {contact.format(kind='email', col='email_n', table='emails')}
              UNION ALL {contact.format(kind='username', col='username_n', table='usernames')}) m
        GROUP BY line, subject_id"""


def flagged_sql(dialect: str = "duckdb") -> str:
    """(line, kind, flag_id) of rows bought from a flagged merchant or of a flagged product (the merchant's flag
    named first), over ``feed_keys`` and ``watch_merchants``/``watch_products``.

    Names are normalised once per distinct name, not per row: a feed has few merchants."""
    parts = []
    for rank, (kind, col, table) in enumerate((("merchant", "merchant", "merchants"),
                                               ("product", "product", "products")), start=1):
        parts.append(f"""
            SELECT f.line, '{kind}' AS kind, n.flag_id, {rank} AS rank
            FROM feed_keys f JOIN (SELECT d.{col}, w.flag_id
                                   FROM (SELECT DISTINCT {col} FROM feed_keys WHERE {col} IS NOT NULL) d
                                   JOIN watch_{table} w ON w.value = {descriptor_sql(f'd.{col}', dialect)}) n
                 ON f.{col} = n.{col}""")
    return f"""SELECT line, min_by(kind, rank) AS kind, min_by(flag_id, rank) AS flag_id
               FROM ({' UNION ALL '.join(parts)}) u GROUP BY line"""


class DuckDBEngine:
    name = "duckdb"

    def screen(self, feed: feeds.Feed, watchlist: Watchlist, keys: dict[int, bytes], current_key: int,
               tmp: Path, workers: int | None = None) -> Matches:
        seconds: dict[str, float] = {}
        con = connect(tmp)
        try:
            t = time.perf_counter()
            read = feeds.load(con, feed)
            feeds.parse(con, feed)
            seconds["read"] = time.perf_counter() - t
            t = time.perf_counter()
            feeds.keep_keys(con, feed)
            seconds["keys"] = time.perf_counter() - t
            t = time.perf_counter()
            valid = feeds.check_cards(con)
            if feed.card_input == "number":
                self._tokenise(con, valid, keys, sorted(needed_keys(keys, watchlist, current_key)), workers)
            seconds["check cards + tokenise"] = time.perf_counter() - t
            t = time.perf_counter()
            register_watchlist(con, watchlist)
            hits = self._match(con, feed, current_key)
            flagged = self._flagged(con)
            seconds["match"] = time.perf_counter() - t
            t = time.perf_counter()
            lines = sorted({h[0] for h in hits} | set(flagged))
            rows = self._rows(con, feed, lines, current_key)
            problems = feeds.problems(con)
            seconds["collect"] = time.perf_counter() - t
            counts = {"rows_read": read, **feeds.counts(con), "problems": len(problems)}
            return Matches(rows, hits, flagged, problems, counts, seconds)
        finally:
            con.close()

    @staticmethod
    def _tokenise(con: duckdb.DuckDBPyConnection, digits: pa.Array, keys: dict[int, bytes], versions: list[int],
                  workers: int | None) -> None:
        """``card_tokens``: each valid distinct card number's token (32 bytes) under each key version needed.

        Registered, not copied: DuckDB scans the Arrow table where it is (and holds it while registered)."""
        parts = []
        for v in versions:
            version = pa.repeat(pa.scalar(v, pa.int32()), len(digits))
            parts.append(pa.table({"card_digits": digits, "key_version": version,
                                   "token_bin": digest_array(keys[v], digits, workers).cast(pa.binary())}))
        table = pa.concat_tables(parts) if parts else pa.table({
            "card_digits": pa.array([], pa.string()), "key_version": pa.array([], pa.int32()),
            "token_bin": pa.array([], pa.binary())})
        con.register("card_tokens", table)

    @staticmethod
    def _match(con: duckdb.DuckDBPyConnection, feed: feeds.Feed, current_key: int) -> list[tuple[int, int, str]]:
        """(line, subject, kinds) of every feed row that carries a watched identifier."""
        rows = con.execute(f"{match_sql(feed.card_input)} ORDER BY line, subject_id").fetchall()
        return [(int(a), int(b), c) for a, b, c in rows]

    @staticmethod
    def _flagged(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str, int]]:
        """Rows bought from a flagged merchant or of a flagged product (the merchant's flag named first)."""
        return {int(line): (kind, int(fid)) for line, kind, fid in con.execute(flagged_sql()).fetchall()}

    @staticmethod
    def _rows(con: duckdb.DuckDBPyConnection, feed: feeds.Feed, lines: list[int],
              current_key: int) -> dict[int, dict[str, Any]]:
        """The shown values of the rows that matter, with each row's identity (``row_key``)."""
        if not lines:
            return {}
        con.register("_lines", pa.table({"line": pa.array(lines, pa.int64())}))
        if feed.card_input == "number":
            token = "lower(hex(t.token_bin))"
            join = f"LEFT JOIN card_tokens t ON t.card_digits = f.card_digits AND t.key_version = {int(current_key)}"
            masked = ("CASE WHEN t.token_bin IS NOT NULL THEN left(f.card_digits, 6) "
                      "|| repeat('*', length(f.card_digits) - 10) || right(f.card_digits, 4) END")
            last4 = "CASE WHEN t.token_bin IS NOT NULL THEN right(f.card_digits, 4) END"
        else:
            token, join, masked, last4 = "f.card_token", "", "CAST(NULL AS VARCHAR)", "f.card_last4"
        merchant_n, product_n = descriptor_sql("f.merchant"), descriptor_sql("f.product")
        identity = (f"CASE WHEN f.transaction_id IS NOT NULL THEN concat_ws('{SEP}', 'tx', coalesce({merchant_n}, ''), "
                    f"f.transaction_id) ELSE concat_ws('{SEP}', 'row', "
                    f"coalesce(strftime(f.transaction_time, '%Y-%m-%dT%H:%M:%S'), ''), coalesce({merchant_n}, ''), "
                    f"coalesce({product_n}, ''), coalesce(CAST(f.amount AS VARCHAR), ''), coalesce({token}, ''), "
                    f"coalesce(f.email_n, ''), coalesce(f.username_n, ''), coalesce(f.ip_address, '')) END")
        sql = f"""
            SELECT f.line, f.transaction_time, f.merchant, f.product, f.amount, f.currency, {masked} AS card_masked,
                   {last4} AS card_last4, {token} AS card_token, f.card_digits, f.email, f.username, f.ip_address,
                   f.transaction_id, {product_n} AS product_n, sha256({identity}) AS row_key
            FROM ({feeds.feed_select(feed, "(SELECT * FROM feed_raw WHERE line IN (SELECT line FROM _lines))")}) f
            {join}
            ORDER BY f.line"""
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        out = {int(r[0]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        con.unregister("_lines")
        return out
