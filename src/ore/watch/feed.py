"""The payment feed: its columns, reading a CSV or Parquet file into DuckDB, and checking each value.

The format is written down in ``docs/watch.md``; ``COLUMNS`` below is the same list, and a
test fails if the two disagree.

What it decides:
- A feed is identified by the SHA-256 of its bytes (the screen adds nothing for a feed
  it has screened before) and each row by its physical line (CSV; the header is line 1)
  or its row number (Parquet), which every problem, alert and lead names.
- A file that cannot be a feed (no ``transaction_time`` column, both ``card_number`` and
  ``card_token``, nothing to match on, a header naming a column twice) is refused whole
  before anything is read.
- A bad value costs only that value: it is reported with its line, field and reason, left
  blank, and the row is screened on what remains (a bad card number does not hide the
  row's email). A row whose CSV structure is broken (wrong number of fields, an open
  quote, bytes that are not UTF-8) is reported and not screened, since its values may
  sit in the wrong columns. Card numbers are never part of a message.
- CSV is read by DuckDB when every record is one physical line (checked by counting the
  file's line breaks against the rows read), else row by row by ingest's reader, which
  counts lines as a person opening the file would.
- Raw card numbers are checked as ingest checks them (digits, spaces and dashes; 12-19
  digits; Luhn), all at once with numpy, by ``ore.watch.cards``, which then tokenises the
  distinct valid numbers under every key version the watchlist holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ore.errors import OreError
from ore.ingest.csvrows import clean_header, open_csv
from ore.watch.cards import LENGTH, LUHN, NOT_DIGITS, OK, distinct_rows, scan
from ore.watch.normalise import email_sql, username_sql


@dataclass(frozen=True)
class Column:
    name: str
    what: str


COLUMNS: tuple[Column, ...] = (
    Column("transaction_time", "ISO 8601 date-time (or date); a zone is converted to UTC, none means UTC. Required."),
    Column("merchant", "billing descriptor, as the processor shows it"),
    Column("product", "site or product code bought"),
    Column("amount", "decimal number"),
    Column("currency", "ISO 4217 code"),
    Column("card_number", "the card number in clear: digits, spaces or dashes; tokenised on reading, never kept"),
    Column("card_token", "the card's token made with the operation's key (64 hex characters), instead of card_number"),
    Column("card_key_version", "with card_token: the key version it was made under (default: any)"),
    Column("card_last4", "with card_token: the card's last four digits, shown in alerts"),
    Column("email", "email address the purchase gave"),
    Column("username", "account name on the site"),
    Column("ip_address", "IPv4 or IPv6 address the order came from"),
    Column("transaction_id", "the processor's id; with the merchant, a row's identity across feeds"),
)
NAMES = tuple(c.name for c in COLUMNS)
MATCHABLE = ("card_number", "card_token", "email", "username", "merchant", "product")
MAX_SHOWN = 60  # characters of a bad value echoed in a problem

_CHUNK = 1 << 22


@dataclass
class Feed:
    """A feed file as found: its format, identity, header and how its cards come."""

    path: Path
    format: str  # csv | parquet
    sha256: str
    header: list[str]
    card_input: str  # number | token | none
    newlines: int = 0
    ends_with_newline: bool = True
    types: dict[str, str] = field(default_factory=dict)  # Parquet column types

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def locator(self) -> str:
        """What a position in this file is called: a CSV line, a Parquet row."""
        return "line" if self.format == "csv" else "row"

    @property
    def ignored(self) -> list[str]:
        return [h for h in self.header if h not in NAMES]


def _digest(path: Path) -> tuple[str, int, bool]:
    """SHA-256 of the file, its line breaks, and whether it ends with one: one pass over the bytes."""
    h = hashlib.sha256()
    newlines = 0
    last = b""
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            newlines += chunk.count(b"\n")
            last = chunk
    return h.hexdigest(), newlines, last.endswith(b"\n") or not last


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            header = next(csv.reader(text, strict=False))
        except StopIteration:
            raise OreError(f"{path.name}: the file is empty (no header row)") from None
        except csv.Error as e:
            raise OreError(f"{path.name}: line 1: the header cannot be read: {e}") from None
    return clean_header(header, path.name)


def open_feed(path: Path) -> Feed:
    """Identify a feed file and check its header; refuse a file that cannot be a feed, naming why."""
    path = Path(path)
    if not path.is_file():
        raise OreError(f"{path}: no such feed file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        fmt = "parquet"
    elif suffix in (".csv", ".txt"):
        fmt = "csv"
    else:
        raise OreError(f"{path.name}: a feed is a .csv or .parquet file")
    sha, newlines, ends = _digest(path)
    types: dict[str, str] = {}
    if fmt == "csv":
        header = _csv_header(path)
    else:
        try:
            rows = duckdb.connect().execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()
        except duckdb.Error as e:
            raise OreError(f"{path.name}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
        header = [r[0] for r in rows]
        types = {r[0]: r[1] for r in rows}
    where = f"{path.name}: line 1" if fmt == "csv" else f"{path.name}: schema"
    if "transaction_time" not in header:
        raise OreError(f"{where}: the required column transaction_time is missing (see docs/watch.md)")
    if "card_number" in header and "card_token" in header:
        raise OreError(f"{where}: a feed gives card_number or card_token, not both; split it into two feeds")
    if not any(c in header for c in MATCHABLE):
        raise OreError(f"{where}: no column to screen on: give card_number or card_token, email, username, "
                       "merchant or product")
    card_input = "number" if "card_number" in header else "token" if "card_token" in header else "none"
    return Feed(path, fmt, sha, header, card_input, newlines, ends, types)


# --- reading -----------------------------------------------------------------------------------


def load(con: duckdb.DuckDBPyConnection, feed: Feed, max_field_chars: int = 4096) -> int:
    """Read the feed into ``feed_raw`` (``line`` plus its known columns); structural problems into
    ``feed_broken`` (line, message). Returns the rows read."""
    con.execute("CREATE OR REPLACE TABLE feed_broken (line BIGINT, message VARCHAR)")
    known = [h for h in feed.header if h in NAMES]
    if feed.format == "parquet":  # a view: the file is read once, by ``parse``
        cols = ", ".join(f'"{c}"' for c in known)
        con.execute(f"CREATE OR REPLACE VIEW feed_raw AS SELECT file_row_number + 1 AS line, {cols} "
                    f"FROM read_parquet('{_sql_text(str(feed.path))}', file_row_number = true)")
    elif not _load_csv_fast(con, feed, known):
        _load_csv_exact(con, feed, known, max_field_chars)
    return con.execute("SELECT count(*) FROM feed_raw").fetchall()[0][0] + \
        con.execute("SELECT count(*) FROM feed_broken").fetchall()[0][0]


def _load_csv_fast(con: duckdb.DuckDBPyConnection, feed: Feed, known: list[str]) -> bool:
    """DuckDB's reader, kept only if every record was exactly one physical line (so rowid + 2 is the line)."""
    columns = "{" + ", ".join(f"'{_sql_text(h)}': 'VARCHAR'" for h in feed.header) + "}"
    cols = ", ".join(f'"{c}"' for c in known)
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE _feed_csv AS SELECT {cols} FROM read_csv($p, header = true, delim = ',', "
            f"quote = '\"', escape = '\"', auto_detect = false, columns = {columns}, store_rejects = true, "
            f"rejects_table = '_feed_rejects', rejects_scan = '_feed_reject_scans')", {"p": str(feed.path)})
    except duckdb.Error:
        return False
    rejected = con.execute("SELECT count(*) FROM _feed_rejects").fetchall()[0][0]
    rows = con.execute("SELECT count(*) FROM _feed_csv").fetchall()[0][0]
    lines = feed.newlines + (0 if feed.ends_with_newline else 1)
    if rejected or lines != rows + 1:
        con.execute("DROP TABLE _feed_csv")
        return False
    con.execute(f"CREATE OR REPLACE VIEW feed_raw AS SELECT rowid + 2 AS line, {cols} FROM _feed_csv")
    return True


def _load_csv_exact(con: duckdb.DuckDBPyConnection, feed: Feed, known: list[str], max_field_chars: int) -> None:
    """Ingest's row-by-row reader: physical lines, and a broken row kept apart, not lost."""
    _, rows, stream = open_csv(feed.path, max_field_chars)
    lines: list[int] = []
    values: dict[str, list[str | None]] = {c: [] for c in known}
    broken: list[tuple[int, str]] = []
    try:
        for row in rows:
            if row.problems:
                broken.append((row.line, "; ".join(row.problems)))
                continue
            lines.append(row.line)
            for c in known:
                values[c].append(row.values.get(c))
    finally:
        stream.close()
    table = pa.table({"line": pa.array(lines, pa.int64()), **{c: pa.array(v, pa.string()) for c, v in values.items()}})
    con.register("_feed_arrow", table)
    con.execute("CREATE OR REPLACE TABLE feed_raw AS SELECT * FROM _feed_arrow")
    con.unregister("_feed_arrow")
    if broken:
        con.executemany("INSERT INTO feed_broken VALUES (?, ?)", broken)


def _sql_text(s: str) -> str:
    return s.replace("'", "''")


# --- checking values ---------------------------------------------------------------------------


def _text(feed: Feed, col: str) -> str:
    """The column as trimmed text, NULL when blank or absent."""
    if col not in feed.header:
        return "CAST(NULL AS VARCHAR)"
    return f"nullif(trim(CAST(\"{col}\" AS VARCHAR)), '')"


def _shown(expr: str) -> str:
    return f"'''' || left({expr}, {MAX_SHOWN}) || CASE WHEN length({expr}) > {MAX_SHOWN} THEN '...' ELSE '' END || ''''"


def parse(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """The view ``feed`` over ``feed_raw``: typed and normalised values and a problem column per checked field.

    A view, not a table: each query reads only the columns it needs and computes only their
    expressions (the email match normalises emails, the problem scan checks values), and ten
    million rows are never held twice. Card numbers are checked apart (``check_cards``), once
    per distinct number.
    """
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE OR REPLACE VIEW feed AS {feed_select(feed, 'feed_raw')}")


def feed_select(feed: Feed, source: str) -> str:
    """The SELECT behind ``feed``, over ``source`` (``feed_raw``, or a few of its rows)."""
    typed = {c: feed.types.get(c, "VARCHAR").upper() for c in ("transaction_time", "amount")}
    if typed["transaction_time"].startswith(("TIMESTAMP", "DATE")):  # Parquet: already a time, never unparseable
        time_text = "CAST(NULL AS VARCHAR)"
        parsed_time = ("CAST(timezone('UTC', CAST(transaction_time AS TIMESTAMPTZ)) AS TIMESTAMP)"
                       if "WITH TIME ZONE" in typed["transaction_time"] else "CAST(transaction_time AS TIMESTAMP)")
    else:
        time_text = _text(feed, "transaction_time")
        parsed_time = f"CAST(TRY_CAST({time_text} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if "amount" in feed.header and not typed["amount"].startswith("VARCHAR"):
        amount_text, parsed_amount = "CAST(NULL AS VARCHAR)", "CAST(amount AS DOUBLE)"
    else:
        amount_text = _text(feed, "amount")
        parsed_amount = f"TRY_CAST({amount_text} AS DOUBLE)"
    # a well-formed token is taken as it is; only another is trimmed and lower-cased before it is judged
    raw_token = 'CAST("card_token" AS VARCHAR)' if "card_token" in feed.header else "CAST(NULL AS VARCHAR)"
    token = (f"CASE WHEN regexp_full_match({raw_token}, '[0-9a-f]{{64}}') THEN {raw_token} "
             f"WHEN regexp_full_match(lower(trim({raw_token})), '[0-9a-f]{{64}}') THEN lower(trim({raw_token})) END")
    card = _text(feed, "card_number")
    now = "CAST(now() AS TIMESTAMP)"
    return f"""
        SELECT line,
               CASE WHEN transaction_time <= {now} THEN transaction_time END AS transaction_time,
               CASE WHEN isfinite(amount) THEN amount END AS amount,
               merchant, product, currency,
               CASE WHEN card_digits <> '' THEN card_digits END AS card_digits,
               card_token,
               CASE WHEN TRY_CAST(version_text AS INTEGER) >= 1 THEN CAST(version_text AS INTEGER) END
                   AS card_key_version,
               CASE WHEN regexp_full_match(last4_text, '[0-9]{{4}}') THEN last4_text END AS card_last4,
               email, username,
               CASE WHEN regexp_full_match(ip_text, '[0-9A-Fa-f:.]{{2,45}}') THEN ip_text END AS ip_address,
               transaction_id,
               {email_sql('email')} AS email_n, {username_sql('username')} AS username_n,
               CASE WHEN transaction_time IS NULL AND time_text IS NULL THEN 'transaction_time is missing'
                    WHEN transaction_time IS NULL THEN 'transaction_time ' || {_shown('time_text')}
                         || ' is not an ISO 8601 date-time'
                    WHEN transaction_time > {now} THEN 'transaction_time '
                         || strftime(transaction_time, '%Y-%m-%dT%H:%M:%S') || ' is in the future' END AS p_time,
               CASE WHEN amount_text IS NOT NULL AND amount IS NULL
                         THEN 'amount ' || {_shown('amount_text')} || ' is not a number'
                    WHEN NOT isfinite(amount) THEN 'amount is not a finite number' END AS p_amount,
               CASE WHEN card_token IS NULL AND nullif(trim(raw_token), '') IS NOT NULL
                    THEN 'card_token is not 64 hexadecimal characters' END AS p_token,
               CASE WHEN version_text IS NOT NULL AND coalesce(TRY_CAST(version_text AS INTEGER) < 1, true)
                    THEN 'card_key_version ' || {_shown('version_text')} || ' is not a key version (1, 2, ...)'
                    END AS p_version,
               CASE WHEN last4_text IS NOT NULL AND NOT regexp_full_match(last4_text, '[0-9]{{4}}')
                    THEN 'card_last4 is not four digits' END AS p_last4,
               CASE WHEN ip_text IS NOT NULL AND NOT regexp_full_match(ip_text, '[0-9A-Fa-f:.]{{2,45}}')
                    THEN 'ip_address ' || {_shown('ip_text')} || ' is not an IP address' END AS p_ip
        FROM (
            SELECT line, {time_text} AS time_text, {parsed_time} AS transaction_time,
                   {amount_text} AS amount_text, {parsed_amount} AS amount,
                   {_text(feed, 'merchant')} AS merchant, {_text(feed, 'product')} AS product,
                   upper({_text(feed, 'currency')}) AS currency,
                   replace(replace({card}, ' ', ''), '-', '') AS card_digits,
                   {raw_token} AS raw_token, {token} AS card_token,
                   {_text(feed, 'card_key_version')} AS version_text, {_text(feed, 'card_last4')} AS last4_text,
                   {_text(feed, 'email')} AS email, {_text(feed, 'username')} AS username,
                   {_text(feed, 'ip_address')} AS ip_text, {_text(feed, 'transaction_id')} AS transaction_id
            FROM {source})
    """


def keep_keys(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """``feed_keys``: what every row is matched on, computed once and kept (about 120 bytes a row).

    A valid token is kept as its 32 bytes, not its 64 hex characters: half the memory, and
    the semi-join compares fixed 32-byte values. Raw card numbers are kept as digits until
    they are tokenised, once per distinct number.
    """
    token = "unhex(card_token)" if feed.card_input == "token" else "CAST(NULL AS BLOB)"
    con.execute(f"""CREATE OR REPLACE TABLE feed_keys AS
                    SELECT line, {token} AS token, card_key_version, card_digits, email_n, username_n, merchant,
                           product
                    FROM feed""")


def check_cards(con: duckdb.DuckDBPyConnection) -> pa.Array:
    """``feed_cards``: the distinct card numbers that fail ingest's checks, with ingest's reason; returns
    the distinct numbers that pass, for tokenising.

    Every row's number is checked at once with numpy (``ore.watch.cards.scan``), which also reads each
    valid number as an integer: the distinct valid numbers are then found by sorting integers, not by
    hashing ten million strings, and only they are tokenised."""
    column = con.sql("SELECT card_digits FROM feed_keys WHERE card_digits IS NOT NULL").to_arrow_table()[0]
    digits = column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    codes, widths, values = scan(digits)
    bad = codes != OK
    con.register("_feed_card_codes", pa.table({"card_digits": digits.filter(pa.array(bad)),
                                               "code": pa.array(codes[bad], pa.int8())}))
    con.execute(f"""
        CREATE OR REPLACE TABLE feed_cards AS
        SELECT card_digits,
               CASE code WHEN {NOT_DIGITS} THEN 'card_number has characters other than digits, spaces and dashes'
                         WHEN {LENGTH} THEN 'card_number has ' || length(card_digits) || ' digits (a card has 12 to 19)'
                         WHEN {LUHN} THEN 'card_number fails Luhn check' END AS problem
        FROM (SELECT DISTINCT card_digits, code FROM _feed_card_codes)  -- a number's code is its own
    """)
    con.unregister("_feed_card_codes")
    return digits.take(pa.array(distinct_rows(widths, values)))


def problems(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    """Every problem found, (line, field, message), in line order; card numbers never appear. One scan of the
    feed, which unfolds only the rows with a problem."""
    checks = {"transaction_time": "p_time", "amount": "p_amount", "card_token": "p_token",
              "card_key_version": "p_version", "card_last4": "p_last4", "ip_address": "p_ip"}
    fields = ", ".join(f"'{f}'" for f in checks)
    rows = con.execute(f"""
        SELECT line, field, message FROM (
            SELECT line, unnest([{fields}]) AS field, unnest([{', '.join(checks.values())}]) AS message FROM feed
            WHERE {' OR '.join(f'{c} IS NOT NULL' for c in checks.values())})
        WHERE message IS NOT NULL
        UNION ALL
        SELECT f.line, 'card_number', c.problem FROM feed_keys f JOIN feed_cards c USING (card_digits)
        UNION ALL
        SELECT line, 'row', message FROM feed_broken
        ORDER BY 1, 2""").fetchall()
    return [(int(line), str(field), str(message)) for line, field, message in rows]


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Rows screened, rows not screened (broken), rows with a problem."""
    screened = con.execute("SELECT count(*) FROM feed_keys").fetchall()[0][0]
    broken = con.execute("SELECT count(*) FROM feed_broken").fetchall()[0][0]
    return {"rows_screened": screened, "rows_not_screened": broken}
