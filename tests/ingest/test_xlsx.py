"""XLSX exports: read like CSV (same rows, same checks, sheet row numbers), hostile archives refused."""

from __future__ import annotations

import csv
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from foreignpkg import COMPARED, FOREIGN, first_canonical_rows, leads, quarantine, query
from typer.testing import CliRunner

from ore.cli import app
from ore.config import Settings
from ore.errors import PackageRejected
from ore.ingest import ingest
from ore.ingest.mapping import example, load_mapping
from ore.workspace import Workspace

MAPPING = example("foreign-1")


def workbook(path: Path, rows: list[list[object]], title: str = "Export") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _typed(header: list[str], row: list[str]) -> list[object]:
    """A canonical row as a spreadsheet would hold it: real dates, numbers, empty cells."""
    out: list[object] = []
    for name, v in zip(header, row, strict=True):
        if v == "":
            out.append(None)
        elif name == "transaction_time":
            out.append(datetime.fromisoformat(v))
        elif name == "date_of_birth":
            out.append(date.fromisoformat(v))
        elif name == "amount":
            try:
                out.append(float(v))
            except ValueError:
                out.append(v)
        elif name == "card_number" and v.isdigit():
            out.append(int(v))
        else:
            out.append(v)
    return out


def _stored_equal(ws: Workspace, a: str, b: str) -> None:
    ra, rb = leads(ws, a), leads(ws, b)
    assert ra.keys() == rb.keys()
    for rid in ra:
        for col in COMPARED:
            assert ra[rid][col] == rb[rid][col], (rid, col, ra[rid][col], rb[rid][col])
    assert [(line, f) for line, f, _ in quarantine(ws, a)] == [(line, f) for line, f, _ in quarantine(ws, b)]


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xlsx")
    ws = Workspace.open(tmp / "ws")
    mapping = load_mapping(MAPPING)
    # the foreign export, cell for cell as text, and the canonical rows with typed cells
    foreign_xlsx = workbook(tmp / "transactions.xlsx", [list(r) for r in _csv_rows(FOREIGN)])
    canon_csv = first_canonical_rows(tmp, 300)  # fewer rows: openpyxl is slow, and these are about cell types
    rows = _csv_rows(canon_csv)
    canon_xlsx = workbook(tmp / "leads.xlsx", [rows[0], *[_typed(rows[0], r) for r in rows[1:]]])
    ingest(ws, FOREIGN, mapping=mapping, package_id="F-CSV")
    ingest(ws, foreign_xlsx, mapping=mapping, package_id="F-XLSX")
    ingest(ws, canon_csv, package_id="C-CSV")
    ingest(ws, canon_xlsx, package_id="C-XLSX")
    return ws


def test_a_mapped_workbook_ingests_like_the_csv(books):
    _stored_equal(books, "F-XLSX", "F-CSV")
    assert dict(query(books, "SELECT package_id, rows_read FROM ingest_files"))["F-XLSX"] == 1000


def test_typed_cells_become_canonical_text(books):
    # datetimes, dates, float amounts and integer card numbers read back as the CSV's values
    _stored_equal(books, "C-XLSX", "C-CSV")
    assert query(books, "SELECT count(*) FROM leads WHERE package_id = 'C-XLSX' AND date_of_birth IS NOT NULL")[0][0]


def test_sheet_row_numbers_blank_rows_width_and_long_fields(tmp_path):
    header = ["record_id", "transaction_time", "card_number", "amount"]
    card = "4111111111111111"
    path = workbook(tmp_path / "x.xlsx", [
        header,
        ["R1", "2001-01-01T10:00:00", card, 1.5],
        [None, None, None, None],  # blank row 3: not a row
        ["R2", datetime(2001, 1, 2, 11, 30), card],  # trailing empty cells are fine
        ["R3", "2001-01-03", card, 2, "surplus"],  # a value beyond the header
        ["R4", "2001-01-04", card, "x" * 5000],
        ["R5", date(2001, 1, 5), card, 3, None, None],
    ])
    ws = Workspace.open(tmp_path / "ws")
    report = ingest(ws, path, package_id="X")
    assert (report.files[0].rows_read, report.files[0].accepted) == (5, 3)
    rows = leads(ws, "X")
    assert {r: v["line"] for r, v in rows.items()} == {"R1": 2, "R2": 4, "R5": 7}
    assert rows["R2"]["transaction_time"] == datetime(2001, 1, 2, 11, 30)
    assert rows["R5"]["transaction_time"] == datetime(2001, 1, 5)
    q = quarantine(ws, "X")
    assert [(line, f) for line, f, _ in q] == [(5, ""), (6, "")]
    assert "row has 5 fields, the header has 4" in q[0][2]
    assert "field amount is 5,000 characters long" in q[1][2]


def test_cli_ingests_a_workbook(tmp_path):
    path = workbook(tmp_path / "x.xlsx", [["record_id", "transaction_time", "card_number"],
                                          ["R1", datetime(2001, 1, 1, 9), "4111111111111111"]])
    result = CliRunner().invoke(app, ["-w", str(tmp_path / "ws"), "ingest", str(path), "--package-id", "X"])
    assert result.exit_code == 0, result.output
    assert "1 rows read = 1 accepted" in result.output


# ----------------------------------------------------------------------------------------------
# Hostile or broken workbooks: refused with a clear error, nothing written


def _set_declared_size(src: Path, dst: Path, member: str, size: int) -> Path:
    """Rewrite the uncompressed size a zip's central directory declares for ``member``."""
    data = bytearray(src.read_bytes())
    i = data.find(b"PK\x01\x02")
    found = False
    while i >= 0:
        name_len = int.from_bytes(data[i + 28:i + 30], "little")
        if data[i + 46:i + 46 + name_len].decode() == member:
            data[i + 24:i + 28] = size.to_bytes(4, "little")
            found = True
        i = data.find(b"PK\x01\x02", i + 4)
    assert found
    dst.write_bytes(data)
    return dst


def _nothing_written(ws: Workspace) -> bool:
    tables = {r[0] for r in query(ws, "SELECT table_name FROM information_schema.tables")}
    return "packages" not in tables or not query(ws, "SELECT * FROM packages")


@pytest.fixture
def small(tmp_path) -> Path:
    return workbook(tmp_path / "small.xlsx", [["record_id", "transaction_time", "card_number"],
                                              ["R1", "2001-01-01", "4111111111111111"]])


def test_absurd_declared_uncompressed_size_is_refused(tmp_path, small):
    bomb = _set_declared_size(small, tmp_path / "bomb.xlsx", "xl/worksheets/sheet1.xml", 0xFFFF0000)
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(PackageRejected, match=r"bomb\.xlsx: entry 'xl/worksheets/sheet1\.xml' expands .*zip bomb"):
        ingest(ws, bomb, package_id="X")
    assert _nothing_written(ws)


def test_total_uncompressed_size_over_the_limit_is_refused(tmp_path, small):
    ws = Workspace.open(tmp_path / "ws", Settings(max_package_bytes=2_000))
    with pytest.raises(PackageRejected, match=r"small\.xlsx: unpacks to [\d,]+ bytes \(limit 2,000\)"):
        ingest(ws, small, package_id="X")
    assert _nothing_written(ws)


def test_absurd_entry_count_is_refused(tmp_path, small):
    with zipfile.ZipFile(small, "a") as zf:
        for i in range(10_001):
            zf.writestr(f"customXml/item{i}.xml", "")
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(PackageRejected, match=r"small\.xlsx: 10,0\d\d entries \(limit 10,000\)"):
        ingest(ws, small, package_id="X")
    assert _nothing_written(ws)


def test_xml_entities_are_refused(tmp_path, small):
    """A billion-laughs style DOCTYPE in the sheet is refused by defusedxml, not expanded."""
    evil = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                root = text.index("<worksheet")
                data = (text[:root] + '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                        + text[root:].replace(">R1<", ">&b;<")).encode()
            dst.writestr(info, data)
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(PackageRejected, match=r"evil\.xlsx: refused: its XML declares entities or a DTD"):
        ingest(ws, evil, package_id="X")
    assert _nothing_written(ws)


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path):
    fake = tmp_path / "fake.xlsx"
    fake.write_text("record_id,transaction_time\nR1,2001-01-01\n")
    with pytest.raises(PackageRejected, match=r"fake\.xlsx: not a readable zip archive"):
        ingest(Workspace.open(tmp_path / "ws"), fake, package_id="X")


def test_an_empty_sheet_is_refused(tmp_path):
    path = workbook(tmp_path / "empty.xlsx", [])
    with pytest.raises(PackageRejected, match=r"empty\.xlsx: sheet 'Export' is empty"):
        ingest(Workspace.open(tmp_path / "ws"), path, package_id="X")
