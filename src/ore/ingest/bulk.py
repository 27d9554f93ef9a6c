"""Bulk load of a well-formed CSV file through DuckDB: the row-by-row load's result, several times faster.

Checking a large package row by row in Python was the slowest part of a 400k-record triage
(about 2 million access-log rows). Here the rows are split, checked and converted in SQL, and only
the rows SQL cannot prove valid go through the Python rules. The result is the row-by-row load's,
row for row, by construction:

- Line numbers: Python reads the bytes, Arrow splits them on line feeds and each line is numbered
  by its place, so a row's line is its physical line (no reliance on a CSV reader's row order or
  its blank-line rules); DuckDB then splits the lines into fields. That holds only if every record is one physical line, so a file is read here
  only when it is strict UTF-8 without NUL or a lone carriage return, its header is one line, and
  every line holding a quote is a comma-joined run of well-formed quoted or unquoted fields (the
  fields extracted join back into exactly the line). A quoted line break, an unbalanced or stray
  quote, or bytes that are not UTF-8 leave the whole file to the row-by-row reader (``load``
  returns None, having written nothing), which knows how to quarantine them.
- Field checks: SQL accepts a row only when every value takes the common form whose Python
  result it reproduces exactly (an ISO time as ``YYYY-MM-DD[Thh:mm:ss]``, a plain decimal, an ASCII
  code ...). Every other row (a missing, bad, future or unusual value, a duplicate key, a card
  number typed into another column, data in an extra column, a wrong field count, a field over the
  length limit) is checked by the same Python ``RowChecker`` as before, in line order, so reasons
  and warnings are the ones it gives.
- Card numbers are validated and tokenised by the same Python functions (a DuckDB function) in a
  private in-memory database that has no temporary directory, so it cannot spill to disk: no clear
  card number is written anywhere.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ore.ingest.accept import QUARANTINE_COLUMNS, WARNING_COLUMNS, FileReport, check_row
from ore.ingest.cards import CardError, Tokeniser, card_digits
from ore.ingest.csvrows import source_row
from ore.ingest.schema import _FALSE, _TRUE, MAX_COUNT, Column, FileSpec, RowChecker
from ore.ingest.tables import arrow_table, insert_rows, table_columns

CHUNK_BYTES = 64 << 20  # bytes handed to DuckDB at a time, cut after a line feed
# Below this the row-by-row reader is as fast (the bulk one spends ~40 ms setting up); tests lower it.
MIN_BYTES = 1 << 20
PYTHON_BATCH = 50_000  # rows checked in Python between inserts
SUFFIXES = (".csv", ".txt", ".tsv", "")  # what ``sources.open_rows`` reads as CSV

# Every character str.strip() removes (str.isspace); tests/ingest/test_bulk.py checks the list.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")

# One field as RFC 4180 writes it: quoted (a doubled quote inside) or without any quote.
_FIELD = r'"(?:[^"]|"")*"|[^,"]*'
_LINE = re.compile(f"(?:{_FIELD})(?:,(?:{_FIELD}))*")  # fullmatch: a line csv reads as one record

# Values in the form SQL converts exactly as the Python rules do; anything else goes to Python.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_VALID: dict[str, str] = {
    "datetime": "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}:[0-9]{2})?",
    "date": "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "amount": "[0-9]{1,15}([.][0-9]{1,15})?",
    "choice": "[A-Za-z_]+",
    "bool": "[A-Za-z0-9]+",
    "count": "[0-9]{1,5}",
    "expiry": "(0[1-9]|1[0-2])/[0-9]{2}",
    "ip": rf"{_OCTET}(?:\.{_OCTET}){{3}}",
    "country": "[A-Za-z]{2}",
}
_TIME_FORMATS = "['%Y-%m-%dT%H:%M:%S', '%Y-%m-%d %H:%M:%S', '%Y-%m-%d']"


class _NotBulk(Exception):
    """The file needs the row-by-row reader."""


def load(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    path: Path,
    names: list[str],
    checker: RowChecker,
    *,
    package_id: str | None,
    max_field_chars: int,
    label: str,
    progress: Callable[[str, int, int | None], None],
    total: int | None,
) -> FileReport | None:
    """Load ``path`` into the open transaction of ``con`` as ``load_file`` would; None if it cannot.

    Returns a ``FileReport``, or None (nothing written) when the file is not one this reader
    proves it reads the way the row-by-row reader does.
    """
    if path.suffix.lower() not in SUFFIXES or path.stat().st_size < MIN_BYTES:
        return None
    mem = duckdb.connect(":memory:", config={"temp_directory": ""})  # no temporary directory: never spills
    try:
        try:
            _stage(mem, path, names)
            routed, rows_read, accepted = _classify(mem, spec, names, checker, package_id, max_field_chars)
        except (_NotBulk, duckdb.OutOfMemoryException):
            return None
        progress(label, rows_read - routed.num_rows, total)
        report = FileReport(label)
        _check_routed(mem, con, spec, names, routed, checker, package_id, max_field_chars, label, report)
        report.rows_read += rows_read - routed.num_rows
        report.accepted += accepted
        _insert_accepted(mem, con, spec, package_id)
        progress(label, report.rows_read, total)
        return report
    finally:
        mem.close()


def _stage(mem: duckdb.DuckDBPyConnection, path: Path, names: list[str]) -> None:
    """Each data line's fields as ``rows (line, f)``; raises ``_NotBulk`` if a record may span lines."""
    mem.execute("CREATE TABLE rows (line BIGINT, f VARCHAR[], bad BOOLEAN)")
    first = 1  # physical line number of the chunk's first line
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            if not chunk.endswith(b"\n"):
                chunk += file.readline()  # a chunk ends at the end of a line
            if b"\x00" in chunk or chunk.count(b"\r") != chunk.count(b"\r\n"):
                raise _NotBulk  # a lone CR is a line break to the csv module
            if not chunk.isascii():
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    raise _NotBulk from None
            chunk = chunk.replace(b"\r\n", b"\n")
            if first == 1:
                chunk = chunk.removeprefix(codecs.BOM_UTF8)
                if not _one_line_header(chunk.partition(b"\n")[0].decode("utf-8"), names):
                    raise _NotBulk
            # split on "\n" alone (str.splitlines would also break at \x0b, \x1c ..., which csv does not)
            whole = pa.array([chunk.removesuffix(b"\n")], pa.large_binary())
            lines = pc.split_pattern(whole, b"\n").flatten().cast(pa.large_string())
            batch = pa.table({"line": np.arange(first, first + len(lines), dtype=np.int64), "l": lines})
            mem.register("_ore_lines", batch)
            mem.execute(_PARSE, {"width": len(names)})
            mem.unregister("_ore_lines")
            first += len(lines)
    if mem.execute("SELECT count(*) FROM rows WHERE bad").fetchall()[0][0]:
        raise _NotBulk


# Lines with a quote are split by a regular expression and are ``bad`` unless the fields join back
# into the line; lines without one are split on commas, which is what csv does with them. A quoted
# field loses its quotes; a line that is one empty field is a blank line to csv, as is an empty one.
_PARSE = f"""
INSERT INTO rows
SELECT line, f, bad FROM (
  SELECT line, bad, list_transform(raw, lambda x: CASE WHEN starts_with(x, '"')
                                            THEN replace(x[2:-2], '""', '"') ELSE x END) AS f
  FROM (SELECT line, raw, quoted AND array_to_string(raw, ',') <> l AS bad
        FROM (SELECT line, l, contains(l, '"') AS quoted,
                     CASE WHEN contains(l, '"') THEN regexp_extract_all(l || ',', '({_FIELD}),', 1)
                          ELSE string_split(l, ',') END AS raw
              FROM _ore_lines WHERE line > 1 AND l <> '')))
WHERE bad OR NOT (len(f) = 1 AND f[1] = '' AND $width > 1)"""


def _one_line_header(line: str, names: list[str]) -> bool:
    """The header the row-by-row reader read is exactly line 1 of the file."""
    if not _LINE.fullmatch(line):
        return False
    fields = next(csv.reader([line], strict=False), [])
    return [f.replace("\ufeff", "").strip() for f in fields] == names


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column_sql(col: Column, v: str) -> tuple[str, list[tuple[str, str]]]:
    """For one column whose stripped text is ``v``: when SQL accepts it, and its stored values."""
    if col.kind == "card":  # validated and tokenised in Python by ore_card_token (see _classify)
        digits = f"replace(replace({v}, ' ', ''), '-', '')"  # what card_digits keeps, for a valid number
        ok = f"CASE WHEN {v} = '' THEN {str(not col.required).lower()} ELSE card_token IS NOT NULL END"
        stored = [
            ("card_token", "card_token"),
            ("card_key_version", "$key_version"),
            ("card_masked", f"{digits}[1:6] || repeat('*', length({digits}) - 10) || {digits}[-4:]"),
            ("card_last4", f"{digits}[-4:]"),
        ]
        return ok, [(n, f"CASE WHEN {v} <> '' THEN {e} END") for n, e in stored]
    if col.kind == "text":
        valid, value = "true", v
    else:
        pattern = f"regexp_full_match({v}, {_sql_text(_VALID[col.kind])})"
        if col.kind == "datetime":
            value = f"try_strptime({v}, {_TIME_FORMATS})"
            valid = f"{pattern} AND NOT starts_with({v}, '0000') AND {value} <= $now"
        elif col.kind == "date":
            value = f"CAST(try_strptime({v}, '%Y-%m-%d') AS DATE)"
            valid = f"{pattern} AND NOT starts_with({v}, '0000') AND {value} <= CAST($now AS DATE)"
        elif col.kind == "amount":
            value = f"TRY_CAST({v} AS DOUBLE)"
            valid = f"{pattern} AND {value} > 0"
        elif col.kind == "choice":
            value = f"lower({v})"
            valid = f"{pattern} AND {value} IN ({', '.join(map(_sql_text, col.choices))})"
        elif col.kind == "bool":
            value = f"lower({v}) IN ({', '.join(map(_sql_text, sorted(_TRUE)))})"
            valid = f"{pattern} AND lower({v}) IN ({', '.join(map(_sql_text, sorted(_TRUE | _FALSE)))})"
        elif col.kind == "count":
            value = f"TRY_CAST({v} AS INTEGER)"
            valid = f"{pattern} AND {value} <= {MAX_COUNT}"
        elif col.kind == "country":
            value, valid = f"upper({v})", pattern
        else:  # expiry, ip: kept as typed
            value, valid = v, pattern
    ok = f"CASE WHEN {v} = '' THEN {str(not col.required).lower()} ELSE coalesce({valid}, false) END"
    return ok, [(col.name, f"CASE WHEN {v} <> '' THEN {value} END")]


def strip_macro(mem: duckdb.DuckDBPyConnection) -> None:
    """``ore_strip(x)``, SQL for ``x.strip()``.

    Trimming by a character set costs over 1 us a value, so only values whose first or last
    character is not printable ASCII (U+0021..U+0084 holds no whitespace) are trimmed.
    """
    mem.execute(f"""CREATE MACRO ore_strip(x) AS CASE
                      WHEN x = '' THEN ''
                      WHEN unicode(x) BETWEEN 33 AND 132 AND unicode(right(x, 1)) BETWEEN 33 AND 132 THEN x
                      ELSE trim(x, {_sql_text(WHITESPACE)}) END""")


def _classify(
    mem: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    names: list[str],
    checker: RowChecker,
    package_id: str | None,
    max_field_chars: int,
) -> tuple[pa.Table, int, int]:
    """Check every row in SQL; returns the rows left to Python, the rows read and the rows accepted."""
    position = {name: i + 1 for i, name in enumerate(names)}
    strip_macro(mem)
    values = [
        f"ore_strip(f[{position[c.name]}]) AS v_{c.name}" if c.name in position else f"'' AS v_{c.name}"
        for c in spec.columns
    ]
    source = "rows"
    card = next((c for c in spec.columns if c.kind == "card"), None)
    if card is not None and card.name not in position:
        values.append("NULL::VARCHAR AS card_token")
    elif card is not None:
        # each distinct card number once through Python (rebills repeat a card): token, or NULL if invalid
        mem.create_function(  # type: ignore[call-overload]  # stubs want enums duckdb 1.x and 2.x name apart
            "ore_card_token", _card_tokens(checker.tokeniser), ["VARCHAR"], "VARCHAR", type="arrow",
            null_handling="special")
        typed = f"ore_strip(f[{position[card.name]}])"
        mem.execute(f"""CREATE TABLE card_tokens AS SELECT v, ore_card_token(v) AS token
                        FROM (SELECT DISTINCT {typed} AS v FROM rows) WHERE v <> ''""")
        source = f"rows LEFT JOIN card_tokens ON card_tokens.v = {typed}"
        values.append("card_tokens.token AS card_token")
    conditions = [
        f"len(f) = {len(names)}",
        f"list_max(list_transform(f, lambda x: length(x))) <= {max_field_chars}",
        # data in an extra column is kept as JSON with card-like numbers masked: Python does that
        *(f"f[{i}] = ''" for name, i in position.items() if name not in spec.name_set),
    ]
    stored: list[tuple[str, str]] = []
    for c in spec.columns:
        ok, exprs = _column_sql(c, f"v_{c.name}")
        conditions.append(ok)
        stored += exprs
    if card is not None:  # the card number typed into a free-text column as well: Python masks it there
        digits = f"replace(replace(v_{card.name}, ' ', ''), '-', '')"
        conditions += [
            f"({digits} = '' OR NOT contains(replace(replace(v_{c.name}, ' ', ''), '-', ''), {digits}))"
            for c in spec.columns if c.kind == "text"]
    if spec.unique is not None:
        # every row sharing a key goes to Python, in line order, where the first valid one keeps it;
        # a key with '*' might equal another row's key once a card number in it is masked
        key = f"v_{spec.unique}"
        typed = f"ore_strip(f[{position[spec.unique]}])" if spec.unique in position else "''"
        mem.execute(f"CREATE TABLE shared_keys AS SELECT {typed} AS k FROM rows GROUP BY k "
                    "HAVING count(*) > 1 AND k IS NOT NULL")  # NOT IN a set with NULL is never true
        conditions.append(f"{key} NOT IN (SELECT k FROM shared_keys) AND NOT contains({key}, '*')")
    types = dict(table_columns(spec, origin=package_id is not None))
    selected = [f"CAST({e} AS {types[n]}) AS {n}" for n, e in stored]
    ok = " AND ".join(f"coalesce({c}, false)" for c in conditions)
    params: dict[str, Any] = {"now": checker.now}
    if card is not None:
        params["key_version"] = checker.tokeniser.version
    sql = f"""CREATE TABLE checked AS
              SELECT line, f, ({ok}) AS ok, {', '.join(selected)}
              FROM (SELECT line, f, {', '.join(values)} FROM {source})"""
    mem.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    mem.execute("DROP TABLE rows")
    mem.execute("DROP TABLE IF EXISTS card_tokens")
    mem.execute("DROP TABLE IF EXISTS shared_keys")
    counts = mem.execute("SELECT count(*), count(*) FILTER (WHERE ok) FROM checked").fetchall()
    rows_read, accepted = counts[0]
    routed = mem.sql("SELECT line, f FROM checked WHERE NOT ok ORDER BY line").to_arrow_table()
    return routed, rows_read, accepted


def _card_tokens(tokeniser: Tokeniser) -> Any:
    """A DuckDB function: the token of each valid card number, NULL for any other (Python says why)."""

    def tokens(raw: pa.Array) -> pa.Array:
        out: list[str | None] = []
        for text in raw.to_pylist():
            try:
                out.append(tokeniser.token(card_digits(text)))
            except CardError:
                out.append(None)
        return pa.array(out, pa.string())

    return tokens


def _check_routed(
    mem: duckdb.DuckDBPyConnection,
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    names: list[str],
    routed: pa.Table,
    checker: RowChecker,
    package_id: str | None,
    max_field_chars: int,
    label: str,
    report: FileReport,
) -> None:
    """The rows SQL left, through the Python rules in line order; quarantine and warnings written."""
    columns = table_columns(spec, origin=package_id is not None)
    mem.execute(f"CREATE TABLE python_accepted ({', '.join(f'{n} {t}' for n, t in columns)})")
    for batch in routed.to_batches(max_chunksize=PYTHON_BATCH):
        accepted: list[dict[str, Any]] = []
        quarantined: list[dict[str, Any]] = []
        warned: list[dict[str, Any]] = []
        for line, fields in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            row = source_row(line, fields, names, max_field_chars)
            check_row(row, spec, checker, package_id, label, report, accepted, quarantined, warned)
        if accepted:
            mem.register("_ore_batch", arrow_table(columns, accepted))
            mem.execute("INSERT INTO python_accepted BY NAME SELECT * FROM _ore_batch")
            mem.unregister("_ore_batch")
        insert_rows(con, "quarantine", QUARANTINE_COLUMNS, quarantined)
        insert_rows(con, "ingest_warnings", WARNING_COLUMNS, warned)


def _insert_accepted(mem: duckdb.DuckDBPyConnection, con: duckdb.DuckDBPyConnection, spec: FileSpec,
                     package_id: str | None) -> None:
    """Accepted rows, SQL's and Python's, into the table in line order, as the row-by-row load leaves them."""
    columns = [n for n, _ in table_columns(spec, origin=package_id is not None)]
    listed = ", ".join(columns)
    others = [c for c in columns if c not in ("package_id", "line", "extra")]
    head = ["$package_id AS package_id"] if package_id is not None else []
    sql = (f"SELECT {listed} FROM (SELECT {', '.join([*head, 'line', *others, 'NULL::VARCHAR AS extra'])} "
           f"FROM checked WHERE ok UNION ALL BY NAME SELECT * FROM python_accepted) ORDER BY line")
    params = {"package_id": package_id} if package_id is not None else {}
    relation = mem.sql(sql, params=params)
    # to_arrow_reader is duckdb 2's name; 1.x has only fetch_record_batch, which 2 keeps but deprecates
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    reader = to_reader(100_000)
    con.register("_ore_bulk", reader)
    try:
        con.execute(f"INSERT INTO {spec.table} ({listed}) SELECT {listed} FROM _ore_bulk")
    finally:
        con.unregister("_ore_bulk")

