"""The watch's Spark engine: a payment feed larger than one machine's memory, screened on Spark SQL.

What runs where:
- Spark (executors) reads the feed, checks every value, normalises the match keys, checks and
  tokenises the distinct raw card numbers (in Spark's Python workers, by the very function the
  DuckDB engine calls: ``ore.watch.cards.digest_array``, so tokens are byte-equal), and joins
  them with the watchlists. The SQL is the DuckDB engine's, written once with the few
  constructs the engines spell differently (``ore.watch.feed``: ``feed_select``;
  ``ore.watch.engine``: ``match_sql``, ``flagged_sql``).
- The driver gets back only the matches, the problems and the raw values of the rows that
  matter, and shapes those rows (shown values, masked card, row identity) with the DuckDB
  engine's own code: a row's identity, which decides what is new across feeds, is one piece
  of code whichever engine screened.

Clear card numbers: Spark's scratch directories (shuffle, spill, cached blocks) are a fresh
directory under the workspace's ``tmp/`` for each screen, with Spark's I/O encryption on; the
session is stopped and the directory removed when the screen ends, and a directory left by an
interrupted screen is removed by the next (the screen holds the workspace's lock). On a
cluster the executors' scratch directories are the cluster manager's: see ``docs/watch.md``.

Line numbers: a Parquet row is its ``_metadata.row_index`` + 1. A CSV is read by Spark's CSV
reader when every record is one physical line (every line has an even number of quotes, the
file is valid UTF-8, every record has the header's number of fields, and records + 1 =
lines); a record's line is then its place in its file block plus the records of the blocks
before it. Otherwise the file is read by ingest's row-by-row reader, as the DuckDB engine
does, and handed to Spark as Parquet in the scratch directory.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ore.errors import OreError
from ore.watch import feed as feeds
from ore.watch.cards import OK, digest_array
from ore.watch.engine import DuckDBEngine, Matches, flagged_sql, match_sql, needed_keys, watch_cards_sql
from ore.watch.watchlist import Watchlist

SCRATCH = "watch-spark"  # under the workspace's tmp: one directory per screen
CORRUPT = "_ore_corrupt_record"  # Spark's column for a record it could not split into the header's fields
QUOTE_ODD = "(length(value) - length(replace(value, '\"', ''))) % 2 = 1"


class SparkEngine:
    name = "spark"

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = dict(settings or {})  # Spark settings for this engine's sessions (tests: small blocks)

    def screen(self, feed: feeds.Feed, watchlist: Watchlist, keys: dict[int, bytes], current_key: int,
               tmp: Path, workers: int | None = None) -> Matches:
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        versions = needed_keys(keys, watchlist, current_key) if feed.card_input == "number" else {}
        run = scratch(tmp)
        spark = None
        try:
            spark = session(run, self.settings)
            seconds["start Spark"] = time.perf_counter() - t
            t = time.perf_counter()
            raw, broken = read(spark, feed, run)
            screened = keep_keys(spark, feed, raw)
            seconds["read + keys"] = time.perf_counter() - t
            t = time.perf_counter()
            if feed.card_input == "number":
                cards(spark, versions)
            seconds["check cards + tokenise"] = time.perf_counter() - t
            t = time.perf_counter()
            register_watchlist(spark, watchlist)
            hits = sorted((int(r[0]), int(r[1]), str(r[2])) for r in spark.sql(match_sql(feed.card_input)).collect())
            flagged = {int(r[0]): (str(r[1]), int(r[2])) for r in spark.sql(flagged_sql("spark")).collect()}
            seconds["match"] = time.perf_counter() - t
            t = time.perf_counter()
            lines = sorted({h[0] for h in hits} | set(flagged))
            rows = shape_rows(spark, raw, feed, lines, keys, current_key)
            problems = sorted(spark_problems(spark, feed.card_input) + [(line, "row", m) for line, m in broken])
            seconds["collect"] = time.perf_counter() - t
            counts = {"rows_read": screened + len(broken), "rows_screened": screened,
                      "rows_not_screened": len(broken), "problems": len(problems)}
            return Matches(rows, hits, flagged, problems, counts, seconds)
        finally:
            if spark is not None:
                spark.stop()  # its block manager's files go with it; the rest with the directory
            shutil.rmtree(run, ignore_errors=True)


# --- the session --------------------------------------------------------------------------------


def scratch(tmp: Path) -> Path:
    """A new scratch directory for this screen under the workspace's tmp; any left by an interrupted screen
    (which may hold clear card numbers) is removed first."""
    base = Path(tmp) / SCRATCH
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="screen-", dir=base))


def session(run: Path, settings: dict[str, str] | None = None) -> Any:
    """A Spark session whose scratch files go only under ``run`` (checked, not assumed), encrypted, in UTC.

    A session already running in this process has its scratch elsewhere and is stopped first: Spark
    takes its scratch directories only when a session starts."""
    from pyspark import SparkContext

    from ore.resolve.engine import spark_session

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    spark = spark_session(conf={**(settings or {}), "spark.local.dir": str(run), "spark.io.encryption.enabled": "true",
                                "spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false"})
    jvm, conf = spark.sparkContext._jvm, spark.sparkContext._jsc.sc().conf()
    dirs = [Path(d) for d in jvm.org.apache.spark.util.Utils.getConfiguredLocalDirs(conf)]
    outside = [str(d) for d in dirs if not d.resolve().is_relative_to(run.resolve())]
    if outside:
        spark.stop()
        raise OreError(f"Spark would write its scratch files (clear card numbers among them) to {', '.join(outside)}, "
                       "outside the workspace's tmp: unset SPARK_LOCAL_DIRS (the screen sets Spark's local "
                       "directory itself)")
    return spark


# --- reading ------------------------------------------------------------------------------------


def read(spark: Any, feed: feeds.Feed, run: Path) -> tuple[Any, list[tuple[int, str]]]:
    """The feed as a DataFrame of ``line`` and its known columns, and the CSV rows too broken to screen."""
    known = [h for h in feed.header if h in feeds.NAMES]
    cols = [feeds.ident(c, "spark") for c in known]
    if feed.format == "parquet":
        # Spark reads a nanosecond timestamp only as its count of nanoseconds: back to a time (microseconds,
        # as DuckDB keeps it)
        nanos = {f.name for f in pq.read_schema(feed.path)
                 if pa.types.is_timestamp(f.type) and f.type.unit == "ns" and f.name in known}
        if nanos:
            spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        cols = [f"timestamp_micros(div({c}, 1000)) AS {c}" if name in nanos else c for name, c in zip(known, cols)]
        return spark.read.parquet(str(feed.path)).selectExpr("_metadata.row_index + 1 AS line", *cols), []
    fast = _csv_fast(spark, feed, cols)
    if fast is not None:
        return fast, []
    return _csv_exact(spark, feed, known, run)


def _csv_fast(spark: Any, feed: feeds.Feed, cols: list[str]) -> Any | None:
    """Spark's CSV reader, numbered by physical line; None where a record may not be one line."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import broadcast
    from pyspark.sql.types import StringType, StructField, StructType

    path = str(feed.path)
    text = spark.read.text(path).selectExpr(f"count_if({QUOTE_ODD}) AS odd",
                                            "count_if(instr(value, '\ufffd') > 0) AS undecodable").first()
    if text["odd"] or text["undecodable"]:  # a quoted line break, or bytes that are not UTF-8
        return None
    schema = StructType([StructField(h, StringType()) for h in feed.header] + [StructField(CORRUPT, StringType())])
    df = spark.read.csv(path, schema=schema, header=True, sep=",", quote='"', escape='"', multiLine=False,
                        mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT, encoding="UTF-8",
                        ignoreLeadingWhiteSpace=False, ignoreTrailingWhiteSpace=False)
    placed = df.selectExpr("input_file_block_start() AS block", "monotonically_increasing_id() AS mono",
                           f"{feeds.ident(CORRUPT, 'spark')} IS NOT NULL AS corrupt", *cols)
    # every field parsed (no column pruning), so a record of the wrong number of fields is always caught;
    # a real column counted, since Spark refuses a query of its corrupt-record column alone
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    blocks = placed.groupBy("block").agg(F.min("mono").alias("first"), F.count("*").alias("records"),
                                         F.max("corrupt").alias("corrupt"),
                                         F.count("transaction_time").alias("times")).collect()
    records = sum(int(b["records"]) for b in blocks)
    lines = feed.newlines + (0 if feed.ends_with_newline else 1)
    if any(b["corrupt"] for b in blocks) or records + 1 != lines:
        return None
    base, offsets = 0, []
    for b in sorted(blocks, key=lambda b: b["block"]):  # the records of the blocks before, then the header
        offsets.append((int(b["block"]), base + 2 - int(b["first"])))
        base += int(b["records"])
    if not offsets:
        return placed.selectExpr("CAST(NULL AS BIGINT) AS line", *cols).where("false")
    where = spark.createDataFrame(offsets, "block long, shift long")
    return placed.join(broadcast(where), "block").selectExpr("mono + shift AS line", *cols)


def _csv_exact(spark: Any, feed: feeds.Feed, known: list[str], run: Path) -> tuple[Any, list[tuple[int, str]]]:
    """Ingest's reader, a batch at a time, into Parquet in the scratch directory (removed with it)."""
    out = run / "feed-exact.parquet"
    broken: list[tuple[int, str]] = []
    writer = None
    try:
        for table, bad in feeds.exact_batches(feed, known):
            broken.extend(bad)
            writer = writer or pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return spark.read.parquet(str(out)), broken


def keep_keys(spark: Any, feed: feeds.Feed, raw: Any) -> int:
    """``feed_keys``: what every row is matched on, and its problems, by the DuckDB engine's rules (``feed_select``
    in Spark's SQL), computed once and kept (spilling to the scratch directory). Returns the rows."""
    from pyspark import StorageLevel

    raw.createOrReplaceTempView("feed_raw")
    token = "unhex(card_token)" if feed.card_input == "token" else "CAST(NULL AS BINARY)"
    keys = spark.sql(feeds.feed_select(feed, "feed_raw", "spark")).selectExpr(
        "line", f"{token} AS token", "card_key_version", "card_digits", "email_n", "username_n", "merchant",
        "product", *feeds.CHECKED.values()).persist(StorageLevel.MEMORY_AND_DISK)
    keys.createOrReplaceTempView("feed_keys")
    return int(keys.count())


# --- card numbers -------------------------------------------------------------------------------


def cards(spark: Any, versions: dict[int, bytes]) -> None:
    """``feed_cards`` (distinct numbers failing ingest's checks, with its reason) and ``card_tokens`` (each valid
    distinct number's token under each key version needed), both computed in Spark's Python workers."""
    distinct = spark.sql("SELECT DISTINCT card_digits FROM feed_keys WHERE card_digits IS NOT NULL")
    checked = distinct.mapInArrow(partial(check_and_tokenise, sorted(versions.items())),
                                  "card_digits string, code tinyint, key_version int, token_bin binary")
    from pyspark import StorageLevel

    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    checked.count()  # checked and tokenised here, once, whatever queries follow
    checked.createOrReplaceTempView("feed_card_checks")
    spark.sql(f"SELECT card_digits, {feeds.card_problem_sql('code', 'card_digits')} AS problem "
              f"FROM feed_card_checks WHERE code <> {OK}").createOrReplaceTempView("feed_cards")
    spark.sql(f"SELECT card_digits, key_version, token_bin FROM feed_card_checks WHERE code = {OK}"
              ).createOrReplaceTempView("card_tokens")


def check_and_tokenise(versions: list[tuple[int, bytes]], batches: Any) -> Any:
    """In a Spark Python worker: each number's check code and, if it passes, its token under each key version
    (one row per version); the checks and the tokens are the DuckDB engine's functions."""
    for batch in batches:
        digits = batch.column(0)
        codes, _, _ = feeds.card_codes(digits)
        ok = pa.array(codes == OK)
        bad = pc.invert(ok)
        parts = [pa.record_batch({
            "card_digits": digits.filter(bad), "code": pa.array(codes[codes != OK], pa.int8()),
            "key_version": pa.nulls(int(bad.true_count), pa.int32()),
            "token_bin": pa.nulls(int(bad.true_count), pa.binary())})]
        good = digits.filter(ok)
        for version, key in versions:
            parts.append(pa.record_batch({
                "card_digits": good, "code": pa.array([OK] * len(good), pa.int8()),
                "key_version": pa.array([version] * len(good), pa.int32()),
                "token_bin": digest_array(key, good, workers=1).cast(pa.binary())}))
        yield from parts


# --- the watchlists, the problems and the rows that matter --------------------------------------


def register_watchlist(spark: Any, watchlist: Watchlist) -> None:
    for name in ("emails", "usernames", "merchants", "products"):
        spark.createDataFrame(getattr(watchlist, name)).createOrReplaceTempView(f"watch_{name}")
    cards_table = watchlist.cards.select(["subject_id", "token", "key_version"])
    spark.createDataFrame(cards_table).createOrReplaceTempView("_watch_cards")
    spark.sql(watch_cards_sql("_watch_cards", "spark")).cache().createOrReplaceTempView("watch_cards")


def spark_problems(spark: Any, card_input: str) -> list[tuple[int, str, str]]:
    """Every value's problem (line, field, message): one scan of the kept keys, unfolding only rows with one."""
    pairs = ", ".join(f"'{f}', {c}" for f, c in feeds.CHECKED.items())
    any_problem = " OR ".join(f"{c} IS NOT NULL" for c in feeds.CHECKED.values())
    sql = f"""SELECT line, field, message FROM (
                  SELECT line, stack({len(feeds.CHECKED)}, {pairs}) AS (field, message) FROM feed_keys
                  WHERE {any_problem}) p
              WHERE message IS NOT NULL"""
    if card_input == "number":
        sql += """ UNION ALL SELECT f.line, 'card_number' AS field, c.problem AS message
                   FROM feed_keys f JOIN feed_cards c ON f.card_digits = c.card_digits"""
    return [(int(r[0]), str(r[1]), str(r[2])) for r in spark.sql(sql).collect()]


def shape_rows(spark: Any, raw: Any, feed: feeds.Feed, lines: list[int], keys: dict[int, bytes],
               current_key: int) -> dict[int, dict[str, Any]]:
    """The rows that matter, fetched raw from Spark and shaped on the driver by the DuckDB engine's code."""
    if not lines:
        return {}
    from pyspark.sql.functions import broadcast

    wanted = spark.createDataFrame([(line,) for line in lines], "line long")
    table = raw.join(broadcast(wanted), "line").toArrow()
    con = duckdb.connect()  # in memory: a few rows
    try:
        con.register("feed_raw", table)
        feeds.parse(con, feed)
        if feed.card_input == "number":
            feeds.keep_keys(con, feed)
            DuckDBEngine._tokenise(con, feeds.check_cards(con), keys, [current_key], 1)
        return DuckDBEngine._rows(con, feed, lines, current_key)
    finally:
        con.close()
