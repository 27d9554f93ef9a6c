"""Malformed and hostile packages, one named test each: a clear error or a quarantine, never a
crash, and a refused package leaves every table of the workspace exactly as it was.

Each test first ingests a good package, so "as it was" is a workspace with data in it, not an
empty one; the cases already covered elsewhere (tests/ingest/test_zip.py, test_package.py,
test_rules.py) are not repeated here except where the bulk reader or another file is in play.
"""

from __future__ import annotations

import codecs
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest

from leadpkg import LEADS_HEADER, VISITS_HEADER, csv_text, lead, open_ws, query, write_package
from ore.allocate import load_nspl
from ore.errors import OreError, PackageRejected
from ore.ingest import bulk, ingest
from ore.ingest.mapping import MappingError, parse_mapping
from ore.ingest.reference import load_reference

GOOD = [lead(1), lead(2, amount="x"), lead(3)]  # one row quarantined: the quarantine table has data too


def state(ws) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the workspace's DuckDB file, sorted: what "unchanged" compares."""
    if not ws.duckdb_path.exists():
        return {}
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace holding a good package; shared, since each test compares it with itself."""
    root = tmp_path_factory.mktemp("hostile")
    w = open_ws(root / "ws")
    ingest(w, write_package(root / "good", GOOD, package_id="GOOD-1"))
    return w


def refused(ws, source: Path, match: str, **kwargs: Any) -> PackageRejected:
    """``source`` is refused with a message matching ``match``; the workspace is as it was."""
    before = state(ws)
    with pytest.raises(PackageRejected, match=match) as e:
        ingest(ws, source, **kwargs)
    assert state(ws) == before, "a refused package writes nothing"
    assert not list(ws.tmp.glob("unpack-*")), "unpacked files are removed"
    return e.value


def zip_of(path: Path, members: dict[str, bytes], attrs: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (attrs or {}).get(name, 0o100644 << 16)
            zf.writestr(info, data)
    return path


def package_members(tmp_path: Path, leads: Any = GOOD, package_id: str = "NEW-1") -> dict[str, bytes]:
    pkg = write_package(tmp_path / f"src-{package_id}", leads, package_id=package_id)
    return {p.name: p.read_bytes() for p in sorted(pkg.iterdir())}


# --- zip archives ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0.5, -22, -1])
def test_truncated_zip_anywhere_is_refused(ws, tmp_path, cut):
    """Cut in a member's data, in the central directory or in its end record: refused, as a zip."""
    whole = zip_of(tmp_path / "whole.zip", package_members(tmp_path)).read_bytes()
    at = int(len(whole) * cut) if cut > 0 else len(whole) + cut
    z = tmp_path / "cut.zip"
    z.write_bytes(whole[:at])
    refused(ws, z, r"cut\.zip: (not a readable zip archive|entry .* is damaged)")


@pytest.mark.parametrize("name", ["pkg/../../leads.csv", "..\\leads.csv"])
def test_zip_slip_beside_a_whole_package_is_refused(ws, tmp_path, name):
    members = package_members(tmp_path) | {name: b"x"}
    refused(ws, zip_of(tmp_path / "slip.zip", members), "would be written outside the package")
    assert not (tmp_path / "leads.csv").exists()


def test_symlink_entry_is_refused(ws, tmp_path):
    """A zip entry marked as a symbolic link (to /etc/passwd, say) is refused, not written as a file."""
    members = package_members(tmp_path) | {"notes": b"/etc/passwd"}
    z = zip_of(tmp_path / "link.zip", members, attrs={"notes": 0o120777 << 16})
    refused(ws, z, r"link\.zip: entry 'notes' is a symbolic link")


def test_entry_named_twice_is_refused(ws, tmp_path):
    """Two leads.csv in one zip: which one the manifest describes is unknowable, so neither is read."""
    members = package_members(tmp_path)
    z = zip_of(tmp_path / "twice.zip", members)
    with zipfile.ZipFile(z, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("leads.csv", csv_text([lead(9)]))
    refused(ws, z, r"twice\.zip: entry 'leads\.csv' appears twice")


def repetitive_package(tmp_path: Path) -> dict[str, bytes]:
    """A real package over 1 MB that compresses about 40 times: not a bomb at the default limit."""
    return package_members(tmp_path, [lead(i) for i in range(1, 6001)], package_id="BIG-1")


def test_compression_ratio_limit_is_the_setting(tmp_path):
    z = zip_of(tmp_path / "big.zip", repetitive_package(tmp_path))
    assert ingest(open_ws(tmp_path / "default"), z).status == "ingested"
    strict = open_ws(tmp_path / "strict", max_compression_ratio=5)
    before = state(strict)
    with pytest.raises(PackageRejected, match=r"big\.zip: entry 'leads\.csv' expands \d+x \(limit 5x"):
        ingest(strict, z)
    assert state(strict) == before


def test_compression_ratio_limit_applies_to_workbooks(tmp_path):
    """A workbook is a zip: 1.3 MB of hex (about 2 to 1 compressed) passes the default limit and is
    refused under a limit of 1.5."""
    wb = openpyxl.Workbook()
    wb.active.append(["record_id", *(os.urandom(16_000).hex() for _ in range(40))])  # 32,000 a cell: Excel's limit
    path = tmp_path / "export.xlsx"
    wb.save(path)
    with pytest.raises(PackageRejected) as default:
        ingest(open_ws(tmp_path / "default"), path, package_id="X-1")
    assert "zip bomb" not in str(default.value)
    strict = open_ws(tmp_path / "strict", max_compression_ratio=1.5)
    with pytest.raises(PackageRejected, match=r"export\.xlsx: .*expands .*\(limit 1\.5x"):
        ingest(strict, path, package_id="X-1")


def test_total_size_limit_counts_the_bytes_written_not_the_declared_sizes(ws, tmp_path):
    """An entry whose directory claims a small size but inflates to more is stopped while unpacking."""
    members = package_members(tmp_path)
    z = zip_of(tmp_path / "liar.zip", members)
    data = bytearray(z.read_bytes())
    # both records of leads.csv (local header and central directory) claim 10 bytes uncompressed
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("leads.csv")
    real = info.file_size.to_bytes(4, "little")
    data = data.replace(real, (10).to_bytes(4, "little"))
    z.write_bytes(bytes(data))
    ws2 = open_ws(tmp_path / "ws2", max_package_bytes=sum(len(v) for k, v in members.items() if k != "leads.csv") + 50)
    before = state(ws2)
    with pytest.raises(PackageRejected, match=r"liar\.zip: (unpacks to more than|entry 'leads\.csv' is damaged)"):
        ingest(ws2, z)
    assert state(ws2) == before


def test_empty_and_zero_byte_zips_are_refused(ws, tmp_path):
    zero = tmp_path / "zero.zip"
    zero.write_bytes(b"")
    refused(ws, zero, r"zero\.zip: not a readable zip archive")
    refused(ws, zip_of(tmp_path / "none.zip", {}), r"none\.zip: no manifest\.json")


@pytest.mark.parametrize("text", ["[" * 100_000, '{"files": ' * 100_000])
def test_manifest_nested_past_the_stack_is_refused(ws, tmp_path, text):
    pkg = write_package(tmp_path / "pkg", [lead(4)], package_id="NEW-1")
    (pkg / "manifest.json").write_text(text)
    refused(ws, pkg, r"manifest\.json: nested too deeply")


# --- encodings and byte-order marks ----------------------------------------------------------------


def leads_bytes(rows: list[dict[str, str]], newline: str = "\n") -> str:
    return csv_text(rows, newline=newline)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_wide_encodings_are_refused_naming_the_encoding(ws, tmp_path, codec):
    text = leads_bytes([lead(4), lead(5)])
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    pkg = write_package(tmp_path / "pkg", bom + text.encode(codec), package_id="NEW-1")
    refused(ws, pkg, rf"leads\.csv: line 1: the file is {codec[:6].upper()} .*save it as \"CSV UTF-8\"")


def test_utf16_without_a_bom_is_refused_for_its_nul_bytes(ws, tmp_path):
    pkg = write_package(tmp_path / "pkg", leads_bytes([lead(4)]).encode("utf-16-le"), package_id="NEW-1")
    refused(ws, pkg, r"leads\.csv: line 1: header of column 1 holds a NUL byte")


@pytest.fixture(params=["bulk", "rows"])
def reader(request, monkeypatch) -> str:
    """Which reader a plain CSV file meets: the bulk one tries every file (in use, from 1 MB), or none does."""
    monkeypatch.setattr(bulk, "MIN_BYTES", 0 if request.param == "bulk" else 1 << 62)
    return request.param


def test_utf8_bom_is_read_alike_by_either_reader(tmp_path, reader):
    data = codecs.BOM_UTF8 + leads_bytes([lead(i, amount="x" if i == 3 else "29.95") for i in range(1, 6)]).encode()
    w = open_ws(tmp_path / "ws")
    report = ingest(w, write_package(tmp_path / "pkg", data, package_id="BOM-1"))
    assert (report.files[0].accepted, report.files[0].quarantined) == (4, 1)
    assert query(w, "SELECT line FROM leads ORDER BY line") == [(2,), (3,), (5,), (6,)]
    assert query(w, "SELECT line, record_id FROM quarantine") == [(4, "R000003")]


def test_mixed_newlines_keep_physical_line_numbers_in_either_reader(tmp_path, reader):
    """\\r\\n, \\n and \\r in one file: a quarantined row is named by the line a person counts."""
    n = 30
    rows = [lead(i, amount="bad" if i in (7, n - 3) else "29.95") for i in range(1, n + 1)]
    lines = leads_bytes(rows).split("\n")[:-1]
    ends = ["\r\n", "\n", "\r"]
    data = "".join(line + ends[i % 3] for i, line in enumerate(lines)).encode()
    w = open_ws(tmp_path / "ws")
    report = ingest(w, write_package(tmp_path / "pkg", data, package_id="NL-1"))
    assert (report.files[0].accepted, report.files[0].quarantined) == (n - 2, 2)
    # the header is line 1 and each row one physical line, whatever ends it
    assert query(w, "SELECT line, record_id FROM quarantine ORDER BY line") == [(8, "R000007"), (n - 2, f"R{n - 3:06d}")]


# --- headers, fields and bytes ----------------------------------------------------------------------


def test_duplicate_header_in_visits_refuses_the_whole_package(ws, tmp_path):
    visits = ",".join([*VISITS_HEADER, "product"]) + "\nuser1,2001-06-01T12:05:00,,,\n"
    pkg = write_package(tmp_path / "pkg", [lead(4)], visits=visits, package_id="NEW-1")
    refused(ws, pkg, r"visits\.csv: line 1: header 'product' appears twice")


def test_duplicate_header_in_a_workbook_is_refused(ws, tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["record_id", "amount", "amount"])
    wb.active.append(["R1", "1", "2"])
    path = tmp_path / "dup.xlsx"
    wb.save(path)
    refused(ws, path, r"dup\.xlsx: line 1: header 'amount' appears twice", package_id="X-1")


def test_duplicate_header_in_a_holdings_file_leaves_every_holding_as_it_was(tmp_path):
    w = open_ws(tmp_path / "ws")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "employment.csv").write_text("employment_ref,employer,occupation\nE1,School,teacher\n")
    (ref / "households.csv").write_text("household_ref,postcode,children_under_18\nH1,TN31 7AA,2\n")
    load_reference(w, ref)
    before = state(w)
    assert before["ref_employment"] and before["ref_households"]
    (ref / "households.csv").write_text("household_ref,postcode,children_under_18\nH1,TN31 7AA,3\n")
    (ref / "employment.csv").write_text("employment_ref,employer,occupation,occupation\nE1,School,teacher,x\n")
    with pytest.raises(PackageRejected, match=r"employment\.csv: line 1: header 'occupation' appears twice"):
        load_reference(w, ref)
    assert state(w) == before


def test_ten_megabyte_header_is_refused(ws, tmp_path):
    pkg = write_package(tmp_path / "pkg", "X" * 10_000_000 + "," + leads_bytes([lead(4)]), package_id="NEW-1")
    refused(ws, pkg, r"leads\.csv: line 1: header of column 1 is 10,000,000 characters long \(limit 1,000\)")


@pytest.mark.parametrize("where", ["quoted", "unterminated"])
def test_ten_megabyte_field_at_the_end_of_a_file_costs_one_row(tmp_path, where):
    """A 10 MB field on the last line, quoted or with its quote never closed: that row is quarantined
    (its value cut in the quarantine), every other row is accepted."""
    tail = '"' + "x" * 10_000_000 + ('",R9\n' if where == "quoted" else "")
    w = open_ws(tmp_path / "ws")
    report = ingest(w, write_package(tmp_path / "pkg", leads_bytes(GOOD) + tail, package_id="BIG-1"))
    assert (report.files[0].accepted, report.files[0].quarantined) == (2, 2)
    (reason, shown), = query(w, "SELECT reason, length(row_masked) FROM quarantine WHERE line = 5")
    assert ("10,000,000 characters long" in reason) if where == "quoted" else ("unbalanced quote" in reason)
    assert shown < 2_000


def test_nul_bytes_are_read_as_characters_and_fail_the_rules_they_break(tmp_path, reader):
    n = 5
    rows = [lead(i) for i in range(1, n + 1)]
    rows[1]["first_name"] = "Jo\x00hn"  # free text: kept as sent
    rows[2]["card_number"] = rows[2]["card_number"][:6] + "\x00" + rows[2]["card_number"][6:]
    rows[3]["transaction_time"] = "2001-06-01\x00T12:00:00"
    w = open_ws(tmp_path / "ws")
    report = ingest(w, write_package(tmp_path / "pkg", leads_bytes(rows), package_id="NUL-1"))
    assert (report.files[0].accepted, report.files[0].quarantined) == (n - 2, 2)
    assert query(w, "SELECT line, field FROM quarantine ORDER BY line") == [(4, "card_number"), (5, "transaction_time")]
    assert query(w, "SELECT first_name FROM leads WHERE line = 3") == [("Jo\x00hn",)]


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
def test_invalid_utf8_is_quarantined_on_its_line(tmp_path, bad, monkeypatch):
    """Stray, truncated, surrogate, overlong and out-of-range sequences: the bulk reader stands aside
    and the row-by-row one quarantines just that row, naming the field."""
    monkeypatch.setattr(bulk, "MIN_BYTES", 0)  # the bulk reader tries first, as it does from 1 MB
    data = leads_bytes([lead(i) for i in range(1, 41)]).encode().replace(b"user30@", b"user" + bad + b"@", 1)
    w = open_ws(tmp_path / "ws")
    report = ingest(w, write_package(tmp_path / "pkg", data, package_id="U-1"))
    assert (report.files[0].accepted, report.files[0].quarantined) == (39, 1)
    assert query(w, "SELECT line, reason FROM quarantine") == [(31, "field email has bytes that are not UTF-8")]


def test_invalid_utf8_in_the_header_is_refused(ws, tmp_path):
    data = leads_bytes([lead(4)]).encode().replace(b"merchant", b"merch\xe9nt", 1)
    refused(ws, write_package(tmp_path / "pkg", data, package_id="NEW-1"),
            r"leads\.csv: line 1: header of column 4 is not valid UTF-8")


# --- empty and header-only files ---------------------------------------------------------------------


@pytest.mark.parametrize(("content", "match"), [
    (b"", "the file is empty"), (codecs.BOM_UTF8, "the file is empty"),
    (b"\n\n", "line 1: the first line is blank; it must be the header row"),
    (b"\r\n" + ",".join(VISITS_HEADER).encode() + b"\r\n", "line 1: the first line is blank"),
])
def test_empty_visits_file_refuses_the_package(ws, tmp_path, content, match):
    pkg = write_package(tmp_path / "pkg", [lead(4)], visits=content, package_id="NEW-1")
    refused(ws, pkg, r"visits\.csv: " + match)


def test_header_only_files_are_an_empty_package_in_a_zip_too(ws, tmp_path):
    header = ",".join(LEADS_HEADER) + "\r\n"
    members = package_members(tmp_path, header, package_id="EMPTY-1")
    report = ingest(ws, zip_of(tmp_path / "empty.zip", members))
    assert [(f.rows_read, f.accepted, f.quarantined) for f in report.files] == [(0, 0, 0)]
    assert query(ws, "SELECT count(*) FROM leads WHERE package_id = 'EMPTY-1'") == [(0,)]


def test_empty_workbook_sheet_and_empty_holdings_file(ws, tmp_path):
    wb = openpyxl.Workbook()
    path = tmp_path / "blank.xlsx"
    wb.save(path)
    refused(ws, path, r"blank\.xlsx: sheet 'Sheet' is empty", package_id="X-1")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "register.csv").write_bytes(b"")
    before = state(ws)
    with pytest.raises(PackageRejected, match=r"register\.csv: the file is empty"):
        load_reference(ws, ref)
    assert state(ws) == before


# --- workbooks whose XML openpyxl would read with rows missing -----------------------------------------


def patched_workbook(tmp_path: Path, change) -> Path:
    """A workbook of two leads, its sheet's XML changed by ``change``."""
    wb = openpyxl.Workbook()
    wb.active.append(LEADS_HEADER)
    for i in (1, 2):
        row = lead(i)
        wb.active.append([row[h] for h in LEADS_HEADER])
    src = tmp_path / "src.xlsx"
    wb.save(src)
    out = tmp_path / "patched.xlsx"
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zo:
        for info in zi.infolist():
            data = zi.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = change(data)
            zo.writestr(info, data)
    return out


@pytest.mark.parametrize(("change", "match"), [
    # row 3 numbered 2 again: openpyxl's iterator drops it without a word
    (lambda x: x.replace(b'<row r="3"', b'<row r="2"'), r"line 2: row 2 comes after row 2"),
    (lambda x: x.replace(b'<row r="3"', b'<row r="1"'), r"line 1: row 1 comes after row 2"),
    # cell B2 before A2: openpyxl keeps only the cells up to the last one's column
    (lambda x: x.replace(b'r="A2"', b'r="Z2"'), r"line 2: the cells of row 2 are out of order"),
    (lambda x: x.replace(b'<row r="3"', b'<row r="2000000"'), r"line 2000000: the sheet claims more than"),
    (lambda x: x.replace(b'<row r="3"', b'<row r="-1"'), r"line 3: a row is numbered -1"),
])
def test_workbook_rows_out_of_order_are_refused_not_dropped(ws, tmp_path, change, match):
    refused(ws, patched_workbook(tmp_path, change), r"patched\.xlsx: " + match, package_id="X-1")


def test_workbook_row_far_down_is_read_on_its_line_without_filling_the_gap(tmp_path):
    path = patched_workbook(tmp_path, lambda x: x.replace(b'<row r="3"', b'<row r="1048576"'))
    w = open_ws(tmp_path / "ws")
    ingest(w, path, package_id="X-1")
    assert query(w, "SELECT line, record_id FROM leads ORDER BY line") == [(2, "R000001"), (1048576, "R000002")]


def test_workbook_cell_in_the_last_column_is_one_quarantined_row_not_16384_fields(tmp_path):
    """A few bytes of XML put a value in column XFD: the row says how wide it is and is quarantined,
    without 16,384 fields being made of it, and the quarantine shows the value."""
    path = patched_workbook(tmp_path, lambda x: x.replace(
        b'<c r="Y3" t="inlineStr" />', b'<c r="Y3" t="inlineStr" /><c r="XFD3" t="inlineStr"><is><t>more</t></is></c>'))
    w = open_ws(tmp_path / "ws")
    report = ingest(w, path, package_id="X-1")
    assert (report.files[0].accepted, report.files[0].quarantined) == (1, 1)
    (line, reason, shown), = query(w, "SELECT line, reason, row_masked FROM quarantine")
    assert (line, reason) == (3, "row has 16384 fields, the header has 25")
    assert len(shown) < 2_000


# --- mapping YAML and the NSPL postcode lookup --------------------------------------------------------


def test_yaml_alias_bomb_is_refused_at_once():
    """The billion laughs: nine levels of nine aliases would be checked node by node (hours)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(MappingError, match=r"line 2, column \d+: .*aliases \(\*a0\) are not allowed"):
        parse_mapping("\n".join([*lines, "columns: *a9"]), "bomb.yaml")


@pytest.mark.parametrize("text", ["? [a, b]: x", "columns:\n  ? {from: x}\n  : y"])
def test_yaml_key_that_is_not_text_is_a_clear_error(text):
    with pytest.raises(MappingError, match=r"m\.yaml: line \d+, column \d+: .*a key must be plain text"):
        parse_mapping(text, "m.yaml")


@pytest.mark.parametrize("text", ["columns: " + "[" * 5000 + "]" * 5000, "columns: " + "{a: " * 3000 + "b" + "}" * 3000])
def test_yaml_nested_past_the_stack_is_a_clear_error(text):
    with pytest.raises(MappingError, match=r"deep\.yaml: line 1, column \d+: .*nested more than 20 levels"):
        parse_mapping(text, "deep.yaml")


@pytest.fixture
def nspl_con(tmp_path):
    con = duckdb.connect(str(tmp_path / "n.duckdb"))
    good = tmp_path / "good.csv"
    good.write_text("pcd,pcds,pfa\nTN317AA,TN31 7AA,E23000032\n")
    assert load_nspl(con, good) == 1
    yield con
    con.close()


@pytest.mark.parametrize(("data", "match"), [
    (b"pcds,pfa\nTN31 7AA\xff,E23000001\n", r"line 2: Invalid unicode"),
    (b"pcds,pfa\nTN31 7AA,E23000001,x,y\n", r"line 2: Expected Number of Columns: 2 Found: \d+"),
    (b"pcds,pfa\nTN31 7AA\n", r"line 2: Expected Number of Columns: 2 Found: 1"),
    (b'pcds,pfa\nA1 1AA,E1\n"TN31 7AA,E1\n', r"line 3: .*unterminated quote"),
    ("pcds,pfa\nTN31 7AA,E1\n".encode("utf-16"), r"line 1: the file is UTF-16"),
    (b"pcds\xff,pfa\nTN31 7AA,E1\n", r"line 1: column\(s\) pcds missing"),
])
def test_damaged_nspl_is_refused_naming_the_line_and_the_lookup_loaded_before_stays(tmp_path, nspl_con, data,
                                                                                      match):
    bad = tmp_path / "nspl.csv"
    bad.write_bytes(data)
    with pytest.raises(OreError, match=r"nspl\.csv: " + match):
        load_nspl(nspl_con, bad)
    assert nspl_con.execute("SELECT * FROM ref_nspl").fetchall() == [("TN317AA", "E23000032")]


def test_nspl_header_is_read_as_published(tmp_path):
    """Columns in capitals or padded, a BOM, CRLF, a quoted line break in another column: read."""
    path = tmp_path / "nspl.csv"
    path.write_bytes(codecs.BOM_UTF8 + b' PCD ,"PCDS",PFA,note\r\nX,TN31 7AA,E1,"two\r\nlines"\r\nY,B1 1AA,E2,\r\n')
    con = duckdb.connect()
    assert load_nspl(con, path) == 2
    assert sorted(con.execute("SELECT * FROM ref_nspl").fetchall()) == [("B11AA", "E2"), ("TN317AA", "E1")]


def test_stream_not_a_file_is_read_like_one():
    """read_csv takes any byte stream (the watch and tests hand it BytesIO), BOM check included."""
    from ore.ingest.csvrows import read_csv

    header, rows = read_csv(io.BytesIO(codecs.BOM_UTF8 + b"a,b\r\n1,2\r\n"), "s.csv", 10)
    assert header == ["a", "b"] and [r.values for r in rows] == [{"a": "1", "b": "2"}]
    with pytest.raises(PackageRejected, match="UTF-16"):
        read_csv(io.BytesIO(codecs.BOM_UTF16_LE + "a,b".encode("utf-16-le")), "s.csv", 10)
