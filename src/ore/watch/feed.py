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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ore.errors import OreError
from ore.ingest.csvrows import clean_header, open_csv, refuse_wide_encoding
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
        refuse_wide_encoding(raw.read(4), path.name)  # a UTF-16 export is named as such, not as bad UTF-8
        raw.seek(0)
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
    parts, broken = [], []
    for table, bad in exact_batches(feed, known, max_field_chars):
        parts.append(table)
        broken.extend(bad)
    con.register("_feed_arrow", pa.concat_tables(parts))
    con.execute("CREATE OR REPLACE TABLE feed_raw AS SELECT * FROM _feed_arrow")
    con.unregister("_feed_arrow")
    if broken:
        con.executemany("INSERT INTO feed_broken VALUES (?, ?)", broken)


def exact_batches(feed: Feed, known: list[str], max_field_chars: int = 4096,
                  rows_per_batch: int = 1 << 17) -> Iterator[tuple[pa.Table, list[tuple[int, str]]]]:
    """A CSV feed read by ingest's reader, a batch at a time: (``line`` and the known columns as text, the
    broken rows' (line, message)). The last batch may be empty; there is always one."""
    _, rows, stream = open_csv(feed.path, max_field_chars)
    lines: list[int] = []
    values: dict[str, list[str | None]] = {c: [] for c in known}
    broken: list[tuple[int, str]] = []

    def batch() -> pa.Table:
        return pa.table({"line": pa.array(lines, pa.int64()),
                         **{c: pa.array(v, pa.string()) for c, v in values.items()}})

    try:
        for row in rows:
            if row.problems:
                broken.append((row.line, "; ".join(row.problems)))
                continue
            lines.append(row.line)
            for c in known:
                values[c].append(row.values.get(c))
            if len(lines) >= rows_per_batch:
                yield batch(), broken
                lines, broken = [], []
                values = {c: [] for c in known}
    finally:
        stream.close()
    yield batch(), broken


def _sql_text(s: str) -> str:
    return s.replace("'", "''")


# --- checking values ---------------------------------------------------------------------------


# --- SQL the engines share ---------------------------------------------------------------------
# The rules below are written once; these helpers spell the few constructs in which DuckDB and
# Spark SQL differ (string literals, identifiers, full regular-expression matches, times).

WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())  # what Python's strip() removes
ISO_TIME = ("[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"
            "(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?")  # ISO 8601: both engines read every such value alike
NUMBER = "[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
NOT_FINITE = "[+-]?([nN][aA][nN]|[iI][nN][fF]([iI][nN][iI][tT][yY])?)"


def literal(text: str, dialect: str = "duckdb") -> str:
    """A SQL string literal: DuckDB doubles a quote, Spark escapes it (and backslashes) with a backslash."""
    if dialect == "spark":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def ident(name: str, dialect: str = "duckdb") -> str:
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def text_type(dialect: str = "duckdb") -> str:
    return "STRING" if dialect == "spark" else "VARCHAR"


def full_match(expr: str, pattern: str, dialect: str = "duckdb") -> str:
    """SQL: ``expr`` matches ``pattern`` whole (Java's ``$`` would also match before a final line break)."""
    if dialect == "spark":
        return f"({expr} RLIKE {literal('^(?:' + pattern + ')' + chr(92) + 'z', dialect)})"
    return f"regexp_full_match({expr}, {literal(pattern)})"


def strip(expr: str, dialect: str = "duckdb") -> str:
    """SQL: ``expr`` without leading or trailing white space, as Python's ``str.strip`` (and so ingest) reads it.

    DuckDB trims a character set slowly, so only a value that starts or ends with white space is trimmed
    (an anchored test: the whole is faster than DuckDB's plain ``trim``, which trims spaces alone)."""
    chars = literal(WHITESPACE, dialect)
    if dialect == "spark":
        return f"btrim({expr}, {chars})"
    edge = literal(f"^[{WHITESPACE}]|[{WHITESPACE}]$")
    return f"CASE WHEN regexp_matches({expr}, {edge}) THEN trim({expr}, {chars}) ELSE {expr} END"


def iso_text(expr: str, dialect: str = "duckdb") -> str:
    """SQL: a timestamp as ``YYYY-MM-DDTHH:MM:SS``."""
    if dialect == "spark":
        return f"(date_format({expr}, 'yyyy-MM-dd') || 'T' || date_format({expr}, 'HH:mm:ss'))"
    return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S')"


def finite(expr: str, dialect: str = "duckdb") -> str:
    # NaN - NaN and inf - inf are NaN, which Spark holds equal to NaN only
    return f"({expr} - {expr} = 0)" if dialect == "spark" else f"isfinite({expr})"


def _text(feed: Feed, col: str, dialect: str = "duckdb") -> str:
    """The column as stripped text, NULL when blank or absent."""
    if col not in feed.header:
        return f"CAST(NULL AS {text_type(dialect)})"
    return f"nullif({strip(f'CAST({ident(col, dialect)} AS {text_type(dialect)})', dialect)}, '')"


def _shown(expr: str, dialect: str = "duckdb") -> str:
    q = literal("'", dialect)
    return f"{q} || left({expr}, {MAX_SHOWN}) || CASE WHEN length({expr}) > {MAX_SHOWN} THEN '...' ELSE '' END || {q}"


def _parsed_time(feed: Feed, time_text: str, dialect: str) -> str:
    """The feed's time as a UTC timestamp (NULL where it is not one): Parquet's own type, or ISO 8601 text."""
    typed = feed.types.get("transaction_time", "VARCHAR").upper()
    if typed.startswith(("TIMESTAMP", "DATE")):  # Parquet: already a time, never unparseable
        if dialect == "spark":  # the session's zone is UTC: an instant is shown as its UTC time
            return "CAST(transaction_time AS TIMESTAMP)"
        return ("CAST(timezone('UTC', CAST(transaction_time AS TIMESTAMPTZ)) AS TIMESTAMP)"
                if "WITH TIME ZONE" in typed else "CAST(transaction_time AS TIMESTAMP)")
    zoned = "TIMESTAMP" if dialect == "spark" else "TIMESTAMPTZ"
    return (f"CASE WHEN {full_match(time_text, ISO_TIME, dialect)} "
            f"THEN CAST(TRY_CAST({time_text} AS {zoned}) AS TIMESTAMP) END")


def parse(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """The view ``feed`` over ``feed_raw``: typed and normalised values and a problem column per checked field.

    A view, not a table: each query reads only the columns it needs and computes only their
    expressions (the email match normalises emails, the problem scan checks values), and ten
    million rows are never held twice. Card numbers are checked apart (``check_cards``), once
    per distinct number.
    """
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE OR REPLACE VIEW feed AS {feed_select(feed, 'feed_raw')}")


def feed_select(feed: Feed, source: str, dialect: str = "duckdb") -> str:
    """The SELECT behind ``feed``, over ``source`` (``feed_raw``, or a few of its rows), in either engine's SQL.

    Every rule is here once: a value is read alike by both engines (times and numbers are
    recognised by pattern first, since each engine's casts accept a different fringe)."""
    d = dialect
    vc = text_type(d)
    time_text = "CAST(NULL AS " + vc + ")"
    if not feed.types.get("transaction_time", "VARCHAR").upper().startswith(("TIMESTAMP", "DATE")):
        time_text = _text(feed, "transaction_time", d)
    if "amount" in feed.header and not feed.types.get("amount", "VARCHAR").upper().startswith("VARCHAR"):
        amount_text, parsed_amount = f"CAST(NULL AS {vc})", "CAST(amount AS DOUBLE)"
    else:
        amount_text = _text(feed, "amount", d)
        parsed_amount = (f"CASE WHEN {full_match(amount_text, NUMBER, d)} OR {full_match(amount_text, NOT_FINITE, d)} "
                         f"THEN TRY_CAST({amount_text} AS DOUBLE) END")
    # a well-formed token is taken as it is; only another is stripped and lower-cased before it is judged
    raw_token = f"CAST({ident('card_token', d)} AS {vc})" if "card_token" in feed.header else f"CAST(NULL AS {vc})"
    stripped_token = f"lower({strip(raw_token, d)})"
    token = (f"CASE WHEN {full_match(raw_token, '[0-9a-f]{64}', d)} THEN {raw_token} "
             f"WHEN {full_match(stripped_token, '[0-9a-f]{64}', d)} THEN {stripped_token} END")
    card = _text(feed, "card_number", d)
    now = "CAST(now() AS TIMESTAMP)"
    version = f"CASE WHEN {full_match('version_text', '[0-9]{1,9}', d)} THEN TRY_CAST(version_text AS INTEGER) END"
    last4_ok = full_match("last4_text", "[0-9]{4}", d)
    ip_ok = full_match("ip_text", "[0-9A-Fa-f:.]{2,45}", d)
    return f"""
        SELECT line,
               CASE WHEN transaction_time <= {now} THEN transaction_time END AS transaction_time,
               CASE WHEN {finite('amount', d)} THEN amount END AS amount,
               merchant, product, currency,
               card_digits,
               card_token,
               CASE WHEN {version} >= 1 THEN {version} END AS card_key_version,
               CASE WHEN {last4_ok} THEN last4_text END AS card_last4,
               email, username,
               CASE WHEN {ip_ok} THEN ip_text END AS ip_address,
               transaction_id,
               {email_sql('email', d)} AS email_n, {username_sql('username', d)} AS username_n,
               CASE WHEN transaction_time IS NULL AND time_text IS NULL THEN 'transaction_time is missing'
                    WHEN transaction_time IS NULL THEN 'transaction_time ' || {_shown('time_text', d)}
                         || ' is not an ISO 8601 date-time'
                    WHEN transaction_time > {now} THEN 'transaction_time '
                         || {iso_text('transaction_time', d)} || ' is in the future' END AS p_time,
               CASE WHEN amount_text IS NOT NULL AND amount IS NULL
                         THEN 'amount ' || {_shown('amount_text', d)} || ' is not a number'
                    WHEN NOT {finite('amount', d)} THEN 'amount is not a finite number' END AS p_amount,
               CASE WHEN card_token IS NULL AND nullif({strip('raw_token', d)}, '') IS NOT NULL
                    THEN 'card_token is not 64 hexadecimal characters' END AS p_token,
               CASE WHEN version_text IS NOT NULL AND coalesce({version} < 1, true)
                    THEN 'card_key_version ' || {_shown('version_text', d)} || ' is not a key version (1, 2, ...)'
                    END AS p_version,
               CASE WHEN last4_text IS NOT NULL AND NOT {last4_ok}
                    THEN 'card_last4 is not four digits' END AS p_last4,
               CASE WHEN ip_text IS NOT NULL AND NOT {ip_ok}
                    THEN 'ip_address ' || {_shown('ip_text', d)} || ' is not an IP address' END AS p_ip
        FROM (
            SELECT line, {time_text} AS time_text, {_parsed_time(feed, time_text, d)} AS transaction_time,
                   {amount_text} AS amount_text, {parsed_amount} AS amount,
                   {_text(feed, 'merchant', d)} AS merchant, {_text(feed, 'product', d)} AS product,
                   upper({_text(feed, 'currency', d)}) AS currency,
                   replace(replace({card}, ' ', ''), '-', '') AS card_digits,
                   {raw_token} AS raw_token, {token} AS card_token,
                   {_text(feed, 'card_key_version', d)} AS version_text,
                   {_text(feed, 'card_last4', d)} AS last4_text,
                   {_text(feed, 'email', d)} AS email, {_text(feed, 'username', d)} AS username,
                   {_text(feed, 'ip_address', d)} AS ip_text, {_text(feed, 'transaction_id', d)} AS transaction_id
            FROM {source})
    """


CHECKED = {"transaction_time": "p_time", "amount": "p_amount", "card_token": "p_token",
           "card_key_version": "p_version", "card_last4": "p_last4", "ip_address": "p_ip"}  # field: problem column


def card_problem_sql(code: str, digits: str) -> str:
    """SQL (both engines): ingest's message for a card number ``ore.watch.cards.scan`` coded ``code``."""
    return (f"CASE {code} WHEN {NOT_DIGITS} THEN 'card_number has characters other than digits, spaces and dashes' "
            f"WHEN {LENGTH} THEN 'card_number has ' || length({digits}) || ' digits (a card has 12 to 19)' "
            f"WHEN {LUHN} THEN 'card_number fails Luhn check' END")


def card_codes(digits: pa.Array) -> tuple[Any, Any, Any]:
    """``ore.watch.cards.scan`` of card numbers with separators removed, and what ingest says of a number typed
    as separators only ("-"): it has characters other than digits."""
    codes, widths, values = scan(digits)
    if len(digits):
        empty = pc.equal(pc.utf8_length(digits), 0).to_numpy(zero_copy_only=False)
        codes[empty] = NOT_DIGITS
    return codes, widths, values


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
    codes, widths, values = card_codes(digits)
    bad = codes != OK
    con.register("_feed_card_codes", pa.table({"card_digits": digits.filter(pa.array(bad)),
                                               "code": pa.array(codes[bad], pa.int8())}))
    con.execute(f"""
        CREATE OR REPLACE TABLE feed_cards AS
        SELECT card_digits, {card_problem_sql('code', 'card_digits')} AS problem
        FROM (SELECT DISTINCT card_digits, code FROM _feed_card_codes)  -- a number's code is its own
    """)
    con.unregister("_feed_card_codes")
    return digits.take(pa.array(distinct_rows(widths, values)))


def problems(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    """Every problem found, (line, field, message), in line order; card numbers never appear. One scan of the
    feed, which unfolds only the rows with a problem."""
    checks = CHECKED
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
