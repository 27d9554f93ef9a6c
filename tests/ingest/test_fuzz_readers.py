"""Fuzzing every reader ore has: any input gives a clean result or ore's own clear error.

Readers: CSV (the row reader, and the bulk DuckDB reader, which must agree with it row for
row), XLSX, zipped packages, mapping YAML (and a mapping applied to hostile values), the NSPL
postcode lookup, holdings files and the watch's payment feed. Inputs are built from the tokens
that break such files (quotes, separators, every kind of line end, BOMs, NUL, bytes that are not
UTF-8, XML and YAML syntax) rather than from uniform random bytes, which rarely get past a header.

The property, for each: an ``OreError`` whose message names the file (and nothing else is raised),
or a result whose accounting holds; never a hang (each example runs under an alarm); and a
refused input leaves the workspace's tables exactly as they were. test_properties.py and
test_bulk.py fuzz ingest's CSV path with other generators; this file does not repeat them.

Examples are bounded for CI; ``ORE_FUZZ_EXAMPLES=N`` runs N per test instead (e.g. 2000 before
a release).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import signal
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from leadpkg import LEADS_HEADER, csv_text, lead, open_ws, write_package
from ore.allocate import load_nspl
from ore.config import Settings
from ore.errors import OreError, PackageRejected
from ore.ingest import bulk, ingest
from ore.ingest.cards import Tokeniser
from ore.ingest.csvrows import read_csv
from ore.ingest.manifest import read_manifest
from ore.ingest.mapping import ColumnMapping, MappingError, example, load_mapping, parse_mapping
from ore.ingest.package import load_file
from ore.ingest.reference import load_reference
from ore.ingest.schema import LEADS, REFERENCE, FieldError, RowChecker
from ore.ingest.tables import create_schema
from ore.ingest.xlsx import open_xlsx
from ore.watch import feed as watch_feed

EXAMPLES = int(os.environ.get("ORE_FUZZ_EXAMPLES", "0"))
HANG_SECONDS = 20  # an example that takes longer than this is a hang, whatever the machine


def fuzz(examples: int) -> settings:
    """``examples`` in CI; ``ORE_FUZZ_EXAMPLES`` when set."""
    return settings(max_examples=EXAMPLES or examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"a reader ran over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def clear_error(error: OreError, name: str) -> None:
    """ore's error for a bad file says which file, in one message."""
    event("refused")  # --hypothesis-show-statistics: how many examples each side of the property took
    text = str(error)
    assert text.startswith((name, f"reference/{name}")) or f"{name}:" in text, text
    assert "Traceback" not in text


def tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in a DuckDB file: what "as before" compares."""
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in names}
    finally:
        con.close()


# --- hostile text, as tokens ----------------------------------------------------------------------

BREAKERS = [b'"', b'""', b",", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf",
            b"\xfe\xff", b"\xff\xfe", b"\xe2\x80\xa8", b"\x0b", b"\x1c", b"\x85", b" ", b"\t", b"'", b"=", b"*"]
WORDS = [b"R1", b"R2", b"29.95", b"2001-06-01T12:00:00", b"2999-01-01", b"abuse", b"approved", b"GB", b"06/03",
         b"10.0.0.1", b"4111111111111111", b"4111 1111 1111 1111", b"TN31 7AA", b"caf\xc3\xa9", b"x" * 50]
token = st.one_of(st.sampled_from(BREAKERS), st.sampled_from(WORDS), st.binary(max_size=4))


def nspl_row(i: int) -> dict[str, str]:
    return {"pcd": f"TN3{i}7AA", "pcds": f"TN3{i} 7AA", "pfa": f"E2300003{i}"}


@st.composite
def hostile_csv(draw: st.DrawFn, header: list[str], row=lead) -> bytes:  # type: ignore[no-untyped-def]
    """A header (mostly the right one), then lines of tokens: rows that are nearly rows.

    One file in three is left clean, so that the property's other side (a result) is tried too.
    """
    clean = draw(st.integers(0, 2)) == 0
    head = ",".join(header).encode()
    if clean:
        pass
    elif draw(st.integers(0, 5)) == 0:
        head = b"".join(draw(st.lists(token, max_size=8)))
    elif draw(st.integers(0, 5)) == 0:  # the header itself damaged at one place
        at = draw(st.integers(0, len(head)))
        head = head[:at] + draw(token) + head[at:]
    lines = [head]
    for _ in range(draw(st.integers(0, 8))):
        if clean or draw(st.booleans()):  # a valid row with a few tokens dropped into it
            values = row(draw(st.integers(1, 5)))
            line = ",".join(values.get(h, "") for h in header).encode()
            for _ in range(0 if clean else draw(st.integers(0, 3))):
                at = draw(st.integers(0, len(line)))
                line = line[:at] + draw(token) + line[at:]
        else:
            line = b"".join(draw(st.lists(token, max_size=12)))
        lines.append(line)
    ends = draw(st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=len(lines), max_size=len(lines)))
    if clean:  # one kind of line end throughout
        ends = [ends[0]] * len(lines)
    data = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    if draw(st.booleans()):
        data = data[:-1]
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + data


# --- CSV: the row reader ----------------------------------------------------------------------------


@fuzz(100)
@given(data=hostile_csv(LEADS_HEADER))
def test_csv_row_reader_returns_rows_in_line_order_or_a_clear_error(data):
    with no_hang():
        try:
            header, rows = read_csv(io.BytesIO(data), "leads.csv", 100)
            rows = list(rows)
        except PackageRejected as e:
            clear_error(e, "leads.csv")
            return
    physical = len(re.findall(rb"\r\n|\r|\n", data)) + 1
    lines = [r.line for r in rows]
    assert lines == sorted(set(lines)) and all(2 <= n <= physical for n in lines)
    for r in rows:
        assert r.problems or (len(r.values) == len(header) and len(r.raw) == len(header))
        assert r.problems or all(len(v) <= 100 for v in r.values.values()), "a long field is a problem"


# --- CSV: the bulk reader agrees with the row reader ------------------------------------------------------

KEY = bytes(range(32))
NOW = datetime(2026, 1, 1)


def load_with(path: Path, use_bulk: bool) -> Any:
    con = duckdb.connect()
    try:
        create_schema(con)
        checker = RowChecker(LEADS, Tokeniser(KEY, 1), now=NOW)
        try:
            report = load_file(con, LEADS, path, checker, package_id="P-1", bulk_reader=use_bulk,
                               settings=Settings(workspace=path.parent, max_field_chars=40))
        except PackageRejected as e:
            clear_error(e, path.name)
            return "rejected", str(e)
        assert report.rows_read == report.accepted + report.quarantined
        return (report, con.execute("SELECT * FROM leads ORDER BY line").fetchall(),
                con.execute("SELECT * FROM quarantine ORDER BY line").fetchall(),
                con.execute("SELECT * FROM ingest_warnings ORDER BY line, field").fetchall())
    finally:
        con.close()


@fuzz(12)
@given(data=hostile_csv(LEADS_HEADER))
def test_bulk_reader_agrees_with_the_row_reader_on_hostile_bytes(tmp_path_factory, monkeypatch, data):
    """Whatever the bytes, the bulk reader gives the row reader's result or stands aside."""
    monkeypatch.setattr(bulk, "MIN_BYTES", 0)  # it tries every file here, not only those over 1 MB
    path = tmp_path_factory.mktemp("bulk") / "leads.csv"
    path.write_bytes(data)
    with no_hang():
        assert load_with(path, use_bulk=True) == load_with(path, use_bulk=False)


# --- XLSX ------------------------------------------------------------------------------------------------

XML_TOKENS = [b'<row r="1">', b'<row r="2">', b'<row r="0">', b'<row r="99999999">', b"</row>", b'<c r="A2">',
              b'<c r="XFE2">', b'<c r="B2" t="s"><v>999</v></c>', b'<c r="A2" t="inlineStr"><is><t>x</t></is></c>',
              b'<c r="A2" t="n"><v>1e999</v></c>', b'<c r="A2" s="1"><v>-1e12</v></c>', b'<c r="A2" t="b"><v>7</v></c>',
              b'<c r="A2" t="d"><v>not a date</v></c>', b"<v>", b"</v>", b'"', b"<", b">", b"&amp;", b"&bogus;",
              b'<!DOCTYPE x [<!ENTITY e "e">]>', b"\x00", b"\xff", b""]


@pytest.fixture(scope="module")
def workbook_bytes(tmp_path_factory) -> dict[str, bytes]:
    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.append(["record_id", "amount", "transaction_time", "card_number"])
    sheet.append(["R1", 29.95, datetime(2001, 6, 1, 12), "4111111111111111"])
    sheet.append(["R2", "x", "2001-06-01", 4111111111111111])
    path = tmp_path_factory.mktemp("xlsx") / "base.xlsx"
    wb.save(path)
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


@fuzz(60)
@given(data=st.data())
def test_xlsx_reader_reads_rows_in_order_or_refuses_clearly(tmp_path_factory, workbook_bytes, data):
    members = dict(workbook_bytes)
    target = data.draw(st.sampled_from(["xl/worksheets/sheet1.xml", "xl/worksheets/sheet1.xml",
                                        "xl/sharedStrings.xml", "xl/styles.xml", "xl/workbook.xml",
                                        "[Content_Types].xml"]))
    if target in members:
        xml = members[target]
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(xml)))
            cut = data.draw(st.integers(0, 30))
            xml = xml[:at] + data.draw(st.sampled_from(XML_TOKENS)) + xml[at + cut:]
        members[target] = xml
    path = tmp_path_factory.mktemp("xlsx") / "export.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    if data.draw(st.integers(0, 4)) == 0:  # the archive itself damaged
        raw = bytearray(path.read_bytes())
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(raw[: data.draw(st.integers(at, len(raw)))]))
    with no_hang():
        try:
            header, rows, close = open_xlsx(path, 100, 10**8, 100)
            try:
                rows = list(rows)
            finally:
                close()
        except PackageRejected as e:
            clear_error(e, "export.xlsx")
            return
    lines = [r.line for r in rows]
    assert lines == sorted(set(lines)) and all(n >= 2 for n in lines)
    assert all(isinstance(v, str) for r in rows for v in r.values.values())


# --- zipped packages ----------------------------------------------------------------------------------------

ENTRY_NAMES = ["manifest.json", "leads.csv", "visits.csv", "pkg/manifest.json", "pkg/leads.csv", "pkg/",
               "../leads.csv", "/leads.csv", "C:leads.csv", "pkg\\..\\..\\x", "a/../../x", "__MACOSX/._leads.csv",
               "leads.csv/", "notes.txt", ""]


_package_ids = itertools.count()


@pytest.fixture(scope="module")
def zip_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("zips")
    ws = open_ws(root / "ws")
    ingest(ws, write_package(root / "good", [lead(1), lead(2, amount="x")], package_id="GOOD-1"))
    return ws


@fuzz(15)
@given(data=st.data())
def test_zip_package_lands_whole_or_is_refused_leaving_the_workspace_as_it_was(zip_ws, data):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        package_id = f"Z-{next(_package_ids):09d}"  # new each time (never "already ingested"), one length
        pkg = write_package(root / "src", csv_text([lead(i) for i in range(1, 4)]), package_id=package_id)
        members: list[tuple[str, bytes, int]] = [(p.name, p.read_bytes(), 0o100644) for p in sorted(pkg.iterdir())]
        for _ in range(data.draw(st.sampled_from([0, 0, 1, 2, 3]))):  # hostile entries beside the real ones
            name = data.draw(st.sampled_from(ENTRY_NAMES))
            content = data.draw(st.sampled_from([b"", b"x", members[0][1], members[1][1], b"\x00" * 100]))
            mode = data.draw(st.sampled_from([0o100644, 0o120777, 0o040755, 0]))
            members.insert(data.draw(st.integers(0, len(members))), (name, content, mode))
        if data.draw(st.booleans()):
            members = data.draw(st.permutations(members))
        z = root / "in.zip"
        with zipfile.ZipFile(z, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": a name twice is meant
            for name, content, mode in members:
                info = zipfile.ZipInfo(name or "x")
                info.external_attr = mode << 16
                info.compress_type = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
                zf.writestr(info, content)
        raw = z.read_bytes()
        # where to cut or change, as a share of the length (compressed sizes vary with the package id)
        at = data.draw(st.integers(0, 999)) * len(raw) // 1000
        if data.draw(st.integers(0, 3)) == 0:  # truncated, or a byte changed
            raw = raw[:at]
        elif data.draw(st.integers(0, 3)) == 0:
            raw = raw[:at] + bytes([data.draw(st.integers(0, 255))]) + raw[at + 1:]
        z.write_bytes(raw)
        outside = sorted(p.relative_to(root) for p in root.rglob("*"))
        before = tables(zip_ws.duckdb_path)
        with no_hang():
            try:
                report = ingest(zip_ws, z)
            except OreError as e:
                event("refused")
                assert re.match(r"(in\.zip|manifest\.json|leads\.csv|visits\.csv): ", str(e)), str(e)
                assert tables(zip_ws.duckdb_path) == before, f"refused ({e}) but the workspace changed"
            else:
                event("ingested")
                assert report.package_id == package_id
                assert all(f.rows_read == f.accepted + f.quarantined for f in report.files)
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == outside, "nothing written beside the zip"
        assert not list(zip_ws.tmp.glob("unpack-*"))


JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
               | st.sampled_from(["ore-lead-package", "leads.csv", "visits.csv", 1, -1, "2002-05-20"]))
MANIFEST_KEYS = st.sampled_from(["format", "version", "package_id", "files", "leads.csv", "visits.csv", "sha256",
                                 "rows", "received", "x"])


def json_branches(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=3) | st.dictionaries(MANIFEST_KEYS, children, max_size=5)


@fuzz(100)
@given(raw=st.recursive(JSON_LEAVES, json_branches, max_leaves=25),
       where=st.sampled_from([(), ("format",), ("version",), ("package_id",), ("received",), ("files",),
                              ("files", "leads.csv"), ("files", "leads.csv", "rows"),
                              ("files", "leads.csv", "sha256"), ("files", "visits.csv")]),
       wrap=st.sampled_from(["{}", "{}", "{}", "\ufeff{}", "[{}]", "{}x", "{}" + "]" * 3]))
def test_manifest_of_any_shape_is_read_or_refused_clearly(tmp_path_factory, raw, where, wrap):
    """A valid manifest with one value (or the whole of it) replaced by any JSON, written as JSON or not."""
    import json

    from leadpkg import sha256

    root = tmp_path_factory.mktemp("manifest")
    data = csv_text([lead(1)]).encode()
    (root / "leads.csv").write_bytes(data)
    manifest: Any = {"format": "ore-lead-package", "version": 1, "package_id": "M-1", "received": "2002-05-20",
                     "files": {"leads.csv": {"sha256": sha256(data), "rows": 1}}}
    if not where:
        manifest = raw
    else:
        parent = manifest
        for key in where[:-1]:
            parent = parent[key]
        parent[where[-1]] = raw
    (root / "manifest.json").write_text(wrap.replace("{}", json.dumps(manifest)), encoding="utf-8")
    with no_hang(5):
        try:
            read = read_manifest(root)
        except PackageRejected as e:
            event("refused")
            assert str(e).startswith(("manifest.json: ", "leads.csv: ", "visits.csv: ")), str(e)
            return
    event("read")
    assert read.package_id.strip() and read.files["leads.csv"]["rows"] == 1


FOREIGN = load_mapping(example("foreign-1"))
FOREIGN_HEADER = [source for _, source in FOREIGN.sources]


def foreign_row(i: int) -> dict[str, str]:
    """A row of a foreign-1 export, its values in that export's forms."""
    row = lead(i)
    return {"TXN_REF": row["record_id"], "Date": "06/01/2001 12:00 PM", "CC Number": row["card_number"],
            "Amount": "$29.95", "Status": "APPROVED", "Type": "ABUSE", "Customer Name": "SMITH, JOHN"}


@fuzz(15)
@given(data=st.data())
def test_bare_export_lands_whole_or_is_refused_leaving_the_workspace_as_it_was(zip_ws, data):
    """A bare CSV export, canonical or mapped (foreign-1), through ``ingest`` with a package id."""
    mapped = data.draw(st.booleans())
    content = data.draw(hostile_csv(FOREIGN_HEADER, foreign_row) if mapped else hostile_csv(LEADS_HEADER))
    package_id = f"B-{next(_package_ids):09d}"
    before = tables(zip_ws.duckdb_path)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "export.csv"
        path.write_bytes(content)
        with no_hang():
            try:
                report = ingest(zip_ws, path, package_id=package_id, mapping=FOREIGN if mapped else None)
            except OreError as e:
                clear_error(e, "export.csv")
                assert tables(zip_ws.duckdb_path) == before, f"refused ({e}) but the workspace changed"
                return
    event("ingested")
    (f,) = report.files
    assert f.rows_read == f.accepted + f.quarantined
    after = tables(zip_ws.duckdb_path)
    assert len([r for r in after["leads"] if r[0] == package_id]) == f.accepted
    assert len([r for r in after["quarantine"] if r[0] == package_id]) == f.quarantined


# --- mapping YAML ----------------------------------------------------------------------------------------------

YAML_TOKENS = ["version: 1", "columns:", "split:", "description: x", "year_pivot: 50", "  ", "    ", "\n", "\t", "- ",
               ": ", "record_id: ID", "transaction_time:", "from: Date", "formats: ['%d/%m/%Y']", "formats: [iso]",
               "timezone: Europe/London", "timezone: Mars/Base", "amount: true", "amount: {decimal: ','}",
               "values: {a: b}", "case: title", "pattern: '{last_name}, {first_name}'", "pattern: '{x}{y}'",
               "&a ", "*a", "<<: *a", "!!python/object:os.system", "[", "]", "{", "}", "'", '"', "#", "%YAML 1.1",
               "---", "...", "? ", "|", ">", "\x00", "\ufeff", "é", "card_number: Card", "value: GB", "default: x"]


@fuzz(200)
@given(parts=st.lists(st.sampled_from(YAML_TOKENS), max_size=30))
def test_mapping_yaml_is_checked_into_a_mapping_or_a_clear_error(parts):
    text = "".join(parts)
    with no_hang(5):
        try:
            mapping = ColumnMapping(parse_mapping(text, "m.yaml"), "m.yaml")
        except MappingError as e:
            clear_error(e, "m.yaml")
            return
    assert isinstance(mapping.sources, list)


MAPPING_LEAVES = st.text(max_size=12) | st.sampled_from(["iso", "%d/%m/%Y", "Europe/London", "title", ","])
MAPPING_KEYS = st.sampled_from(["columns", "split", "from", "formats", "value", "amount", "record_id",
                                "transaction_time", "patterns", "version", "x"])


def mapping_branches(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(MAPPING_KEYS, children, max_size=4)


@fuzz(100)
@given(tree=st.recursive(MAPPING_LEAVES, mapping_branches, max_leaves=20))
def test_mapping_of_any_shape_is_checked_clearly(tree):
    import yaml

    with no_hang(5):
        try:
            parse_mapping(yaml.safe_dump(tree), "m.yaml")
        except MappingError as e:
            clear_error(e, "m.yaml")


@pytest.fixture(scope="module")
def mappings() -> list[ColumnMapping]:
    extra = parse_mapping("""
columns:
  record_id: ID
  transaction_time: {from: When, formats: ['%d/%m/%y %I:%M %p', '%Y%m%d'], timezone: America/New_York}
  amount: {from: Paid, amount: {thousands: '.', decimal: ','}}
  status: {from: State, values: {ok: approved, cb: chargeback}, case: lower}
  country: {value: GB}
split:
  - from: Name
    patterns: ['{last_name}, {first_name}', '{first_name} {last_name}']
    case: title
""", "extra.yaml")
    return [load_mapping(example("foreign-1")), ColumnMapping(extra, "extra.yaml")]


@fuzz(150)
@given(data=st.data())
def test_a_mapping_applied_to_hostile_values_converts_or_quarantines(mappings, data):
    """A mapped value is converted, or the row is quarantined (``FieldError``): never another error."""
    mapping = data.draw(st.sampled_from(mappings))
    value = st.one_of(st.text(max_size=40), st.sampled_from(
        ["", " ", "31/12/99 11:59 PM", "29/02/01 12:00 AM", "20010229", "1.234,50", "(5,00)", "€", "USD", "--1",
         "1e309", "NaN", "Smith, John", ", ", "John", "\x00", "\ud800", "٣١/١٢/٩٩", "9" * 400]))
    row = {source: data.draw(value) for _, source in mapping.sources}
    with no_hang(5):
        try:
            out = mapping.apply(dict(row), "leads.csv")
        except FieldError as e:
            assert str(e)
            return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())


# --- the NSPL postcode lookup -------------------------------------------------------------------------------------


@fuzz(30)
@given(data=hostile_csv(["pcd", "pcds", "pfa"], nspl_row))
def test_nspl_loads_or_refuses_naming_the_file_and_keeps_the_lookup_it_had(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("nspl")
    con = duckdb.connect()
    try:
        good = d / "good.csv"
        good.write_text("pcds,pfa\nTN31 7AA,E23000032\n")
        load_nspl(con, good)
        bad = d / "nspl.csv"
        bad.write_bytes(data)
        with no_hang():
            try:
                n = load_nspl(con, bad)
            except OreError as e:
                clear_error(e, "nspl.csv")
                assert con.execute("SELECT * FROM ref_nspl").fetchall() == [("TN317AA", "E23000032")]
                return
        assert n == con.execute("SELECT count(*) FROM ref_nspl").fetchall()[0][0]
        assert con.execute("SELECT count(*) FROM ref_nspl WHERE postcode IS NULL OR pfa IS NULL").fetchall() == [(0,)]
    finally:
        con.close()


# --- holdings (reference) files -----------------------------------------------------------------------------------

HOLDINGS = {spec.file: spec for spec in REFERENCE}


@pytest.fixture(scope="module")
def holdings_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("holdings")
    ws = open_ws(root / "ws")
    ref = root / "ref"
    ref.mkdir()
    (ref / "households.csv").write_text("household_ref,postcode,children_under_18\nH1,TN31 7AA,2\n")
    load_reference(ws, ref)
    return ws


@fuzz(15)
@given(data=st.data())
def test_holdings_file_loads_with_its_accounting_or_leaves_every_holding_as_it_was(holdings_ws, data):
    spec = HOLDINGS[data.draw(st.sampled_from(sorted(HOLDINGS)))]
    content = data.draw(hostile_csv(spec.names))
    before = tables(holdings_ws.duckdb_path)
    with tempfile.TemporaryDirectory() as d:
        ref = Path(d)
        (ref / spec.file).write_bytes(content)
        with no_hang():
            try:
                reports = load_reference(holdings_ws, ref)
            except OreError as e:
                clear_error(e, spec.file)
                assert tables(holdings_ws.duckdb_path) == before
                return
    (report,) = reports
    assert report.rows_read == report.accepted + report.quarantined
    after = tables(holdings_ws.duckdb_path)
    assert len(after[spec.table]) == report.accepted
    assert len([q for q in after["quarantine"] if q[1] == f"reference/{spec.file}"]) == report.quarantined


# --- the watch's payment feed --------------------------------------------------------------------------------------

FEED_HEADER = ["transaction_time", "merchant", "amount", "card_number", "email", "username", "transaction_id"]


@fuzz(25)
@given(data=hostile_csv(FEED_HEADER))
def test_watch_feed_is_read_with_every_row_accounted_for_or_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("feed") / "feed.csv"
    path.write_bytes(data)
    con = duckdb.connect()
    try:
        with no_hang():
            try:
                feed = watch_feed.open_feed(path)
                read = watch_feed.load(con, feed)
                watch_feed.parse(con, feed)
                con.execute("SELECT * FROM feed").fetchall()
            except OreError as e:
                clear_error(e, "feed.csv")
                return
        lines = [n for (n,) in con.execute("SELECT line FROM feed_raw UNION ALL SELECT line FROM feed_broken")
                 .fetchall()]
        assert len(lines) == read == len(set(lines)), "every row once, on its own line"
        assert all(n >= 2 for n in lines)
    finally:
        con.close()
