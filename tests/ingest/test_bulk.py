"""The bulk reader (DuckDB) gives the row-by-row reader's result, row for row, or stands aside.

Each file is loaded twice, once by each reader, into fresh in-memory databases, and every
stored row, quarantine entry and warning must be equal: same lines, values, fields and reasons.
Files the bulk reader cannot prove it reads the same way (a quoted line break, a stray quote,
bytes that are not UTF-8) must fall back to the row-by-row reader, never be misread.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadpkg import (CARD, LEADS_HEADER, VISITS_HEADER, card, csv_text, lead, open_ws, quarantine, query,
                     write_package)
from ore.config import Settings
from ore.errors import PackageRejected
from ore.ingest import bulk, ingest
from ore.ingest.cards import Tokeniser
from ore.ingest.package import load_file
from ore.ingest.schema import LEADS, REFERENCE, VISITS, FileSpec, RowChecker
from ore.ingest.tables import create_schema

NOW = datetime(2026, 1, 1, 12, 0, 0)
KEY = bytes(range(32))
SPECS = {spec.file: spec for spec in (LEADS, VISITS, *REFERENCE)}
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def bulk_for_small_files() -> Iterator[None]:
    """The bulk reader takes small files too here (in use it starts at ``bulk.MIN_BYTES``)."""
    real = bulk.MIN_BYTES
    bulk.MIN_BYTES = 0
    yield
    bulk.MIN_BYTES = real


@contextmanager
def bulk_calls() -> Iterator[list[bool]]:
    """Record, for each file, whether the bulk reader loaded it (True) or stood aside (False)."""
    calls: list[bool] = []
    real = bulk.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        report = real(*args, **kwargs)
        calls.append(report is not None)
        return report

    bulk.load = spy  # type: ignore[assignment]
    try:
        yield calls
    finally:
        bulk.load = real  # type: ignore[assignment]


def load_with(spec: FileSpec, path: Path, use_bulk: bool, max_field_chars: int = 40) -> Any:
    """Everything one reader leaves: the report and the file's stored rows, quarantine and warnings."""
    con = duckdb.connect()
    try:
        create_schema(con)
        checker = RowChecker(spec, Tokeniser(KEY, 1), now=NOW)
        package_id = "P-1" if spec in (LEADS, VISITS) else None
        try:
            report = load_file(con, spec, path, checker, package_id=package_id, bulk_reader=use_bulk,
                               settings=Settings(workspace=path.parent, max_field_chars=max_field_chars))
        except PackageRejected as e:
            return "rejected", str(e)
        return (report, con.execute(f"SELECT * FROM {spec.table} ORDER BY line").fetchall(),
                con.execute("SELECT * FROM quarantine ORDER BY line").fetchall(),
                con.execute("SELECT * FROM ingest_warnings ORDER BY line, field").fetchall())
    finally:
        con.close()


def same_result(spec: FileSpec, path: Path) -> bool:
    """Both readers agree on ``path``; returns whether the bulk reader was the one that read it."""
    with bulk_calls() as calls:
        fast = load_with(spec, path, use_bulk=True)
    slow = load_with(spec, path, use_bulk=False)
    assert fast == slow
    if fast[0] != "rejected":
        report = fast[0]
        assert report.rows_read == report.accepted + report.quarantined
    return bool(calls and calls[0])


# --- values that test every rule's edges -----------------------------------------------------------

BLANKS = ["", " ", "\t", "\u3000", "\u00a0", "\u2028", "\x1c", "\x85", "\u200b", "\ufeff"]
BY_KIND: dict[str, list[str]] = {
    "text": ["x", "L" * 45, "  padded  ", "é", "a\u0301", "Flat 2, 3 High St", 'say "hi"', "'quoted'", "*", "R1",
             "💳", "\u3000wide\u3000", "=SUM(A1)"],
    "datetime": ["2001-06-01T12:00:00", "2001-06-01 12:00:00", "2001-06-01", "2001-06-01T12:00",
                 "2001-06-01T12:00:00Z", "2001-06-01T12:00:00+02:00", "2001-06-01T12:00:00.5",
                 "2001-02-29T00:00:00", "2000-02-29T23:59:59", "0000-01-01T00:00:00", "0001-01-01T00:00:00",
                 "9999-12-31T23:59:59",
                 "2001-06-01T24:00:00", "2001-06-01T12:00:60", "20010601T120000", "2001-6-01T12:00:00",
                 "2026-01-01T12:00:00", "2026-01-01T12:00:01", "2026-01-01", "yesterday",
                 "2001-06-01x12:00:00", "\u0662001-06-01T12:00:00", " 2001-06-01T12:00:00 "],
    "date": ["1970-01-01", "1970-02-31", "2000-02-29", "0000-01-01", "19700101", "1970-1-01", "2026-01-01",
             "2026-01-02", "9999-12-31", "1970-01-01T00:00:00", "1970-W01-1", "\u0661970-01-01"],
    "amount": ["29.95", "0", "0.00", "-1", "1e3", "NaN", "Infinity", ".5", "5.", "+5", "0029.950", "1" * 15,
               "123456789012345.123456789012345", "9" * 16, "1e-999999", "1e999999", "\u0661\u0662", "1_000",
               "0.1", "0.30000000000000004", "3.14159265358979", "1,5"],
    "choice": ["abuse", "ADULT", "Unknown", "approved", "Chargeback", "declined ", "other", "\u212a",
               "ABUSE\u0130", "contact", "non_contact", "very_high", "education", "lost", "stolen", "Stolen"],
    "bool": ["true", "T", "Yes", "y", "1", "0", "no", "FALSE", "maybe", "\u0131", "tru"],
    "count": ["0", "2", "007", "10000", "10001", "99999", "-1", "1.0", "\u00b2", "\u0662", "1e2"],
    "expiry": ["06/03", "6/03", "13/01", "00/00", "12/99", "06/2003", "06-03"],
    "ip": ["10.0.0.1", "255.255.255.255", "256.0.0.1", "010.0.0.1", "::1", "2001:db8::1", "2001:DB8::1",
           "1.2.3", "\u0661.2.3.4", "10.0.0.1 ", "fe80::1%eth0"],
    "country": ["GB", "gb", "Gb", "G", "GBR", "\u00df", "\u00c9S", "g\u0131"],
    "card": [CARD, card(2), card(3), f" {card(4)} ", " ".join([CARD[i:i + 4] for i in range(0, 16, 4)]),
             "-".join([CARD[i:i + 4] for i in range(0, 16, 4)]), "4111111111111112", "41111111",
             "4111 1111 abcd 1111", "\uff14111111111111111", "4" * 20, "4111111111111111\u0301"],
}


@st.composite
def cell(draw: st.DrawFn, kind: str) -> str:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.sampled_from(BLANKS))
    if choice == 1:
        pad = draw(st.sampled_from(BLANKS[1:]))
        return pad + draw(st.sampled_from(BY_KIND[kind])) + pad
    if choice == 2:  # free text, never a line break (those are for the fallback tests)
        return draw(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"),
                            max_size=12))
    if choice == 3:
        return draw(st.sampled_from(BY_KIND["text"]))
    return draw(st.sampled_from(BY_KIND[kind]))


@st.composite
def csv_file(draw: st.DrawFn, spec: FileSpec) -> bytes:
    """A file for ``spec``: columns in any order (optional ones may be absent, an unknown one added),
    values at every rule's edges, duplicate keys, a card number typed into a free-text column,
    quoting minimal or total, LF or CRLF, blank lines, short and long rows."""
    names = [c.name for c in spec.columns if c.required or draw(st.booleans()) or draw(st.booleans())]
    if draw(st.integers(0, 4)) == 0:
        names.append("agency_note")
    names = draw(st.permutations(names))
    kinds = {c.name: c.kind for c in spec.columns}
    rows: list[list[str]] = []
    for _ in range(draw(st.integers(0, 20))):
        row = [draw(cell(kinds.get(n, "text"))) for n in names]
        if spec.unique in names and draw(st.booleans()):  # keys that collide, with or without padding
            keys = ["R1", " R1", "R1 ", "R2", "411111******1111", CARD]
            row[names.index(spec.unique)] = draw(st.sampled_from(keys))
        if "card_number" in names and draw(st.integers(0, 5)) == 0:
            text = [i for i, n in enumerate(names) if kinds.get(n) == "text"]
            if text:
                row[draw(st.sampled_from(text))] = "card " + row[names.index("card_number")]
        if draw(st.integers(0, 12)) == 0:
            row = row[:-1] if row and draw(st.booleans()) else [*row, "surplus"]
        rows.append(row)
    buf = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    writer = csv.writer(buf, quoting=quoting, lineterminator=newline)
    writer.writerow(names)
    for row in rows:
        writer.writerow(row)
        if draw(st.integers(0, 8)) == 0:
            buf.write(draw(st.sampled_from(["", '""'])) + newline)  # a blank line, to csv
    data = buf.getvalue()
    if draw(st.integers(0, 6)) == 0:
        data = "\ufeff" + data
    if draw(st.booleans()):
        data = data.removesuffix(newline)
    return data.encode("utf-8")


# Between them these hold every kind of column (card and date required in card_alerts, bool in
# employment, count in households).
COVERING = ["leads.csv", "visits.csv", "card_alerts.csv", "employment.csv", "households.csv"]
VALID = {"text": "x", "datetime": "2001-06-01T12:00:00", "date": "1970-01-01", "amount": "29.95",
         "bool": "true", "count": "2", "expiry": "06/03", "ip": "10.0.0.1", "country": "GB"}


def edge_rows(spec: FileSpec) -> list[dict[str, str]]:
    """A valid row per edge value of each column, that value alone changed (plain and padded)."""
    def valid(c: Any, i: int) -> str:
        if c.name == spec.unique:
            return f"K{i}"
        return card(i) if c.kind == "card" else c.choices[0] if c.kind == "choice" else VALID[c.kind]

    rows = []
    for c in spec.columns:
        for value in [*BY_KIND[c.kind], *BY_KIND["text"][:4]]:
            for shown in (value, f" {value}\u3000"):
                row = {d.name: valid(d, len(rows)) for d in spec.columns}
                row[c.name] = shown
                rows.append(row)
    return rows


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_edge_value_of_every_rule_gives_the_same_result(tmp_path, name):
    spec = SPECS[name]
    path = tmp_path / spec.file
    path.write_text(csv_text(edge_rows(spec), header=spec.names), encoding="utf-8")
    assert same_result(spec, path)


@pytest.mark.parametrize("name", COVERING)
@FEW
@given(data=st.data())
def test_well_formed_files_are_read_in_bulk_with_the_same_result(tmp_path_factory, name, data):
    spec = SPECS[name]
    path = tmp_path_factory.mktemp("bulk") / spec.file
    path.write_bytes(data.draw(csv_file(spec)))
    assert same_result(spec, path), "a one-record-per-line UTF-8 file is read in bulk"


def shaken(data: bytes, rnd: random.Random) -> bytes:
    """Some bytes of ``data`` changed to what breaks CSV structure or decoding."""
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        if not out:
            break
        i = rnd.randrange(len(out))
        out[i:i + 1] = rnd.choice([b'"', b'\n', b'\r', b',', b'\xff', b'\x00', b'""', b'\r\n', b' "', b'"x'])
    return bytes(out)


@pytest.mark.parametrize("name", COVERING)
@FEW
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_damaged_files_give_the_same_result_whichever_reader(tmp_path_factory, name, data, seed):
    spec = SPECS[name]
    path = tmp_path_factory.mktemp("bulk") / spec.file
    path.write_bytes(shaken(data.draw(csv_file(spec)), random.Random(seed)))
    same_result(spec, path)


def test_whitespace_is_what_str_strip_removes():
    assert bulk.WHITESPACE == "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace())


@pytest.fixture(scope="module")
def sql() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    bulk.strip_macro(con)
    yield con
    con.close()


line_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"), max_size=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(line_text, st.sampled_from([*BLANKS, "\u2003", "\x0b", "\u3000\t"])), max_size=20))
def test_sql_strip_is_str_strip(sql, pairs):
    values = [v for text, pad in pairs for v in (text, pad + text + pad, pad + text, text + pad)]
    got = sql.execute("SELECT list_transform(?, lambda x: ore_strip(x))", [values]).fetchall()[0][0]
    assert got == [v.strip() for v in values]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.from_regex(bulk._VALID["amount"], fullmatch=True), max_size=30))
def test_sql_amount_is_the_nearest_double_as_in_python(sql, texts):
    from decimal import Decimal

    got = sql.execute("SELECT list_transform(?, lambda x: TRY_CAST(x AS DOUBLE))", [texts]).fetchall()[0][0]
    assert got == [float(Decimal(t)) for t in texts]


# --- line numbers -------------------------------------------------------------------------------------


def visits_text(n: int, bad: dict[int, dict[str, str]], newline: str = "\n") -> str:
    rows = [{"username": f"user{i % 97}", "visit_time": f"2001-06-{1 + i % 28:02d}T{i % 24:02d}:05:00",
             "ip_address": f"10.0.{i % 256}.{i % 199}", "product": f"SITE-{i % 5:02d}"}
            for i in range(1, n + 1)]
    for i, fields in bad.items():
        rows[i - 1].update(fields)
    return csv_text(rows, header=VISITS_HEADER, newline=newline)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bad_time_in_a_large_visits_file_is_quarantined_on_its_line(tmp_path, monkeypatch, newline):
    """Rows far apart, across many DuckDB vectors and read chunks: each keeps its physical line."""
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 100_000)  # many chunks, each cut after a line feed
    n = 120_000
    bad = {1: {"visit_time": "soon"}, 4_567: {"username": " "}, 77_777: {"visit_time": "2001-06-01T25:00:00"},
           n: {"visit_time": "2999-01-01T00:00:00"}}
    ws = open_ws(tmp_path / "ws")
    with bulk_calls() as calls:
        report = ingest(ws, write_package(tmp_path / "pkg", [lead(1)], visits=visits_text(n, bad, newline)))
    assert calls == [True, True]
    visits = report.files[1]
    assert (visits.rows_read, visits.accepted, visits.quarantined) == (n, n - 4, 4)
    assert [(q["line"], q["field"]) for q in quarantine(ws)] == [
        (2, "visit_time"), (4_568, "username"), (77_778, "visit_time"), (n + 1, "visit_time")]
    reasons = [q["reason"] for q in quarantine(ws)]
    assert reasons == ["visit_time 'soon' is not an ISO 8601 date-time", "username is missing",
                       "visit_time '2001-06-01T25:00:00' is not an ISO 8601 date-time",
                       "visit_time 2999-01-01T00:00:00 is in the future"]
    stored = query(ws, "SELECT line, username, strftime(visit_time, '%Y-%m-%dT%H:%M:%S') FROM visits "
                       "ORDER BY line")
    assert len(stored) == n - 4
    lines = visits_text(n, bad).splitlines()
    for line, username, time in stored[::997]:
        assert lines[line - 1].startswith(f"{username},{time},"), line
    assert query(ws, "SELECT count(*) = count(DISTINCT line) FROM visits") == [(True,)]


def test_visits_with_a_quoted_line_break_keep_their_line_numbers(tmp_path):
    """A quoted field spanning two lines: the file goes to the row-by-row reader, which counts lines."""
    bad = {3: {"product": "SITE\n01"}, 10: {"visit_time": "soon"}}
    ws = open_ws(tmp_path / "ws")
    with bulk_calls() as calls:
        report = ingest(ws, write_package(tmp_path / "pkg", [lead(1)], visits=visits_text(20, bad)))
    assert calls == [True, False]
    visits = report.files[1]
    assert (visits.rows_read, visits.accepted, visits.quarantined) == (20, 19, 1)
    assert [q["line"] for q in quarantine(ws)] == [12]  # row 10 starts on line 12: row 3 took two lines
    assert query(ws, "SELECT line, product FROM visits WHERE line IN (4, 6) ORDER BY line") == [
        (4, "SITE\n01"), (6, "SITE-04")]


@pytest.mark.parametrize("content", [
    b'username,visit_time\nu1,2001-06-01T00:00:00\nu"2,2001-06-01T00:00:00\n',  # a quote inside a field
    b'username,visit_time\n"u1" ,2001-06-01T00:00:00\n',  # text after a closing quote
    b'username,visit_time\nu1,2001-06-01T00:00:00\ru2,2001-06-01T00:00:00\n',  # a lone CR ends a line
    b'username,visit_time\nu\xff1,2001-06-01T00:00:00\n',  # not UTF-8
    b'username,visit_time\nu\x001,2001-06-01T00:00:00\n',  # NUL
    b'"user\nname",visit_time\nu1,2001-06-01T00:00:00\n',  # a header over two lines
])
def test_files_the_bulk_reader_cannot_prove_go_row_by_row(tmp_path, content):
    path = tmp_path / "visits.csv"
    path.write_bytes(content)
    assert not same_result(VISITS, path)


def test_a_card_number_typed_into_another_column_is_masked_there(tmp_path):
    ws = open_ws(tmp_path / "ws")
    rows = [lead(1), lead(2, email=f"{card(2)}@example.com"),
            lead(3, address_line2=card(3)[:8] + " " + card(3)[8:])]
    with bulk_calls() as calls:
        ingest(ws, write_package(tmp_path / "pkg", rows))
    assert calls == [True]
    assert query(ws, "SELECT email, address_line2 FROM leads ORDER BY line") == [
        ("user1@example.com", None), (f"{card(2)[:6]}******{card(2)[-4:]}@example.com", None),
        ("user3@example.com", f"{card(3)[:6]}******{card(3)[-4:]}")]


def test_a_key_that_equals_another_rows_masked_key_is_a_duplicate(tmp_path):
    """Row 1's record_id is its card number, stored masked; row 2's record_id is that mask as typed."""
    masked = f"{CARD[:6]}******{CARD[-4:]}"
    path = write_package(tmp_path / "pkg", [lead(1, record_id=CARD, card_number=CARD),
                                            lead(2, record_id=masked), lead(3)]) / "leads.csv"
    assert same_result(LEADS, path)
    ws = open_ws(tmp_path / "ws")
    ingest(ws, path.parent)
    (q,) = quarantine(ws)
    assert (q["line"], q["field"]) == (3, "record_id") and "more than once" in q["reason"]


def test_accepted_plus_quarantined_is_every_row_and_lines_are_unique(tmp_path):
    rows = [lead(i, amount="x" if i % 7 == 0 else "9.99", record_id="R1" if i % 11 == 0 else f"R{i:06d}")
            for i in range(1, 2_001)]
    ws = open_ws(tmp_path / "ws")
    with bulk_calls() as calls:
        report = ingest(ws, write_package(tmp_path / "pkg", rows))
    assert calls == [True]
    leads = report.files[0]
    assert leads.rows_read == 2_000 == leads.accepted + leads.quarantined
    lines = [ln for (ln,) in query(ws, "SELECT line FROM leads UNION ALL SELECT line FROM quarantine "
                                       "ORDER BY 1")]
    assert lines == list(range(2, 2_002))
    assert query(ws, "SELECT count(*) FROM leads WHERE record_id = 'R1'") == [(1,)]


def test_bulk_and_row_by_row_agree_on_every_column_of_the_leads_header(tmp_path):
    rows = [lead(i) for i in range(1, 50)]
    path = write_package(tmp_path / "pkg", csv_text(rows, header=LEADS_HEADER)) / "leads.csv"
    assert same_result(LEADS, path)


def test_only_the_rows_that_need_python_go_there(tmp_path, monkeypatch):
    """Short rows (a NULL key among them) or a shared key send those rows to Python, not the whole file."""
    checked: list[int] = []
    real = bulk.check_row

    def spy(row: Any, *args: Any, **kwargs: Any) -> None:
        checked.append(row.line)
        real(row, *args, **kwargs)

    monkeypatch.setattr(bulk, "check_row", spy)
    header = [*LEADS_HEADER[1:], "record_id"]  # the key last: the short rows have none (NULL in SQL)
    lines = csv_text([lead(i) for i in range(1, 51)] + [lead(7)], header=header).splitlines()
    lines[10], lines[20] = "T1,2001-06-01T12:00:00", "T2"
    path = tmp_path / "leads.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert same_result(LEADS, path)
    assert sorted(set(checked)) == [8, 11, 21, 52]  # the two short rows and both rows with key R000007
