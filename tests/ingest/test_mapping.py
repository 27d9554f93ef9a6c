"""Column mappings: a bare foreign export, mapped, lands exactly as the canonical rows do.

What is compared (foreign-1 with ``mappings/foreign-1.yaml`` against the same
record_ids of public-1's leads.csv ingested canonically into the same workspace):
every stored column of ``leads`` (line, times, amounts, currency, status,
card token / masked / last four, expiry, names, date of birth, contact, address,
IP, extras) is equal, with two honest exceptions the export itself forces:

* ``transaction_time``: the export writes ``hh:mm AM/PM`` without seconds, so the
  mapped time must equal the canonical time truncated to the minute.
* ``first_name`` / ``last_name``: the export upper-cases names (``BUTLER, MLRY``);
  the mapping title-cases them (``case: title``, which also restores O'/Mc/hyphen
  capitals). Names are equal case-insensitively for every row, and exactly for
  every row except where the canonical spelling has a capital that no rule can
  restore (``MoCarthy``: one row in these 1,000).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from foreignpkg import COMPARED, FOREIGN, first_canonical_rows, leads, quarantine, query, write_csv
from typer.testing import CliRunner

from ore.cli import app
from ore.errors import OreError, PackageRejected
from ore.ingest import ingest
from ore.ingest.mapping import MappingError, example, load_mapping, title_name
from ore.workspace import Workspace

MAPPING = example("foreign-1")


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One workspace holding foreign-1 mapped (F1) and the canonical first 1,000 rows (CANON)."""
    tmp = tmp_path_factory.mktemp("foreign")
    ws = Workspace.open(tmp / "ws")
    ingest(ws, FOREIGN, mapping=load_mapping(MAPPING), mapping_text=MAPPING.read_text(), package_id="F1")
    ingest(ws, first_canonical_rows(tmp), package_id="CANON")
    return ws


def test_a_manifest_made_on_receipt_records_the_rows_read(both):
    (manifest,) = query(both, "SELECT manifest FROM packages WHERE package_id = 'F1'")[0]
    meta = json.loads(manifest)["files"]["leads.csv"]
    assert meta["rows"] == 1000 and meta["original_name"] == "transactions.csv"


def test_foreign_export_accounts_for_all_1000_rows_like_the_canonical_sample(both):
    counts = dict(query(both, "SELECT package_id, rows_read FROM ingest_files"))
    assert counts == {"F1": 1000, "CANON": 1000}
    accepted = dict(query(both, "SELECT package_id, accepted FROM ingest_files"))
    assert accepted["F1"] == accepted["CANON"] > 990
    # the malformed rows are quarantined on the same lines for the same fields
    assert [(line, f) for line, f, _ in quarantine(both, "F1")] == \
        [(line, f) for line, f, _ in quarantine(both, "CANON")]
    assert len(quarantine(both, "F1")) == 1000 - accepted["F1"]


def test_foreign_rows_equal_canonical_rows_field_by_field(both):
    mapped, canon = leads(both, "F1"), leads(both, "CANON")
    assert mapped.keys() == canon.keys()
    inexact_names = []
    for rid, m in mapped.items():
        c = canon[rid]
        for col in COMPARED:
            if col == "transaction_time":
                assert m[col] == c[col].replace(second=0, microsecond=0), rid
            elif col in ("first_name", "last_name"):
                assert m[col].casefold() == c[col].casefold(), (rid, col)
                if m[col] != c[col]:
                    inexact_names.append(c[col])
            else:
                assert m[col] == c[col], (rid, col, m[col], c[col])
    # only spellings with a capital no title-casing rule can restore differ in case
    assert all(title_name(n.upper()) != n for n in inexact_names)
    assert len(inexact_names) <= 2
    assert any(m["date_of_birth"] for m in mapped.values())  # DOBs were converted, not dropped
    assert {m["currency"] for m in mapped.values()} == {"USD"}


def test_mapping_text_is_kept_with_the_package(both):
    (kept,) = query(both, "SELECT mapping FROM packages WHERE package_id = 'F1'")[0]
    assert "Customer Name" in kept


def test_cli_ingests_a_bare_export_with_mapping_and_package_id(tmp_path):
    result = CliRunner().invoke(
        app, ["-w", str(tmp_path / "ws"), "ingest", str(FOREIGN), "--mapping", str(MAPPING), "--package-id", "F1"]
    )
    assert result.exit_code == 0, result.output
    assert "1,000 rows read" in result.output


# ----------------------------------------------------------------------------------------------
# Small exports


HEADER = ["Ref", "When", "Card", "Amount", "Status", "Name", "Born", "Notes", "phone"]
CARD = "4111111111111111"


def _ingest(tmp_path: Path, mapping_yaml: str, rows: list[list[str]], header: list[str] = HEADER,
            package_id: str = "P1") -> Workspace:
    src = write_csv(tmp_path / "export.csv", header, rows)
    mfile = tmp_path / "m.yaml"
    mfile.write_text(mapping_yaml, encoding="utf-8")
    ws = Workspace.open(tmp_path / "ws")
    ingest(ws, src, mapping=load_mapping(mfile), package_id=package_id)
    return ws


DAY_FIRST = """
columns:
  record_id: Ref
  transaction_time: {from: When, formats: ["%d/%m/%Y %H:%M:%S", "%d/%m/%y %H:%M"]}
  card_number: Card
  amount: {from: Amount, amount: {thousands: ".", decimal: ","}}
  currency: {value: EUR}
  status: {from: Status, values: {OK: approved, KO: declined}}
  date_of_birth: {from: Born, formats: ["%d.%m.%y"], year_pivot: 10}
split:
  - from: Name
    patterns: ["{last_name}, {first_name}", "{first_name} {last_name}"]
    case: title
"""


def test_day_first_dates_two_digit_years_and_european_amounts(tmp_path):
    ws = _ingest(tmp_path, DAY_FIRST, [
        ["A1", "31/12/2001 23:15:07", CARD, "€1.234,50", "OK", "O'BRIEN, SEAN", "05.04.83", "", ""],
        ["A2", "01/02/02 09:30", CARD, "29,95 €", "ko", "mary-jane SMITH-JONES", "29.02.08", "x", "0161 496 0000"],
        ["A3", "13/01/99 00:00", CARD, "EUR 5", "Ok", "Madonna", "01.01.11", "", ""],
    ])
    rows = leads(ws, "P1")
    assert rows["A1"]["transaction_time"] == datetime(2001, 12, 31, 23, 15, 7)
    assert rows["A2"]["transaction_time"] == datetime(2002, 2, 1, 9, 30)  # 02 -> 2002
    assert rows["A3"]["transaction_time"] == datetime(1999, 1, 13)  # 99 -> 1999 (default pivot)
    assert [rows[r]["amount"] for r in ("A1", "A2", "A3")] == [1234.5, 29.95, 5.0]
    assert [rows[r]["status"] for r in ("A1", "A2", "A3")] == ["approved", "declined", "approved"]
    assert rows["A1"]["date_of_birth"] == date(1983, 4, 5)
    assert rows["A2"]["date_of_birth"] == date(2008, 2, 29)  # 08 <= pivot 10 -> 2008, a leap year
    assert rows["A3"]["date_of_birth"] == date(1911, 1, 1)  # 11 > pivot 10 -> 1911
    assert (rows["A1"]["first_name"], rows["A1"]["last_name"]) == ("Sean", "O'Brien")
    assert (rows["A2"]["first_name"], rows["A2"]["last_name"]) == ("Mary-Jane", "Smith-Jones")
    # a name that fits no pattern leaves the name fields empty and is kept, unsplit, as an extra
    assert rows["A3"]["first_name"] is None and rows["A3"]["last_name"] is None
    assert json.loads(rows["A3"]["extra"])["Name"] == "Madonna"
    # unmapped source columns pass through: under a canonical name they fill it, otherwise they are extras
    assert rows["A2"]["phone"] == "0161 496 0000"
    assert json.loads(rows["A2"]["extra"]) == {"Notes": "x"}
    assert {r["currency"] for r in rows.values()} == {"EUR"}


def test_a_bad_date_in_a_mapped_file_is_quarantined_naming_the_field(tmp_path):
    ws = _ingest(tmp_path, DAY_FIRST, [
        ["A1", "31/12/2001 23:15:07", CARD, "1", "OK", "", "", "", ""],
        ["A2", "12/31/2001 23:15:07", CARD, "1", "OK", "", "", "", ""],  # month-first in a day-first file
        ["A3", "01/01/2002 10:00:00", CARD, "1", "OK", "", "31.02.80", "", ""],  # impossible optional DOB
    ])
    assert set(leads(ws, "P1")) == {"A1", "A3"}
    ((line, field, reason),) = quarantine(ws, "P1")
    assert (line, field) == (3, "transaction_time")
    assert query(ws, "SELECT record_id FROM quarantine") == [("A2",)]
    assert "transaction_time" in reason and "12/31/2001 23:15:07" in reason and "%d/%m/%Y" in reason
    # an optional date that does not convert costs only the value, with a warning, as in a canonical file
    assert leads(ws, "P1")["A3"]["date_of_birth"] is None
    assert query(ws, "SELECT line, field FROM ingest_warnings") == [(4, "date_of_birth")]


def test_a_card_number_never_appears_in_a_mapping_error(tmp_path):
    m = "columns:\n  record_id: Ref\n  card_number: Card\n  transaction_time: {from: When, formats: ['%d/%m/%Y']}\n"
    ws = _ingest(tmp_path, m, [["A1", "4111 1111 1111 1111", CARD, "", "", "", "", "", ""]])
    ((_, field, reason),) = quarantine(ws, "P1")
    assert field == "transaction_time"
    assert "4111 1111 1111 1111" not in reason and "411111" in reason  # masked: first six, last four


def test_time_zone_converts_to_utc(tmp_path):
    m = """
columns:
  record_id: Ref
  card_number: Card
  transaction_time: {from: When, formats: ["%m/%d/%Y %I:%M %p"], timezone: America/New_York}
"""
    ws = _ingest(tmp_path, m, [["A1", "05/28/2000 03:44 AM", CARD, "", "", "", "", "", ""]])
    assert leads(ws, "P1")["A1"]["transaction_time"] == datetime(2000, 5, 28, 7, 44)  # EDT is UTC-4


def test_constant_and_default(tmp_path):
    m = """
columns:
  record_id: Ref
  card_number: Card
  transaction_time: {from: When, formats: [iso]}
  status: {from: Status, default: approved}
  merchant: {value: "KEYZ AV SERVICES"}
"""
    ws = _ingest(tmp_path, m, [["A1", "2001-01-01T10:00:00", CARD, "", "", "", "", "", ""],
                               ["A2", "2001-01-01", CARD, "", "DECLINED", "", "", "", ""]])
    rows = leads(ws, "P1")
    assert [rows["A1"]["status"], rows["A2"]["status"]] == ["approved", "declined"]
    assert {r["merchant"] for r in rows.values()} == {"KEYZ AV SERVICES"}


def test_a_mapped_source_column_missing_from_the_header_rejects_the_file(tmp_path):
    m = "columns:\n  record_id: Ref\n  card_number: CC Number\n  transaction_time: When\n"
    with pytest.raises(PackageRejected) as e:
        _ingest(tmp_path, m, [["A1", "2001-01-01", CARD, "", "", "", "", "", ""]])
    assert "line 1" in str(e.value) and "'CC Number'" in str(e.value) and "columns.card_number" in str(e.value)
    assert not query(Workspace.open(tmp_path / "ws"), "SELECT * FROM information_schema.tables "
                     "WHERE table_name = 'packages'") or not query(Workspace.open(tmp_path / "ws"),
                                                                    "SELECT * FROM packages")


def test_a_required_column_neither_mapped_nor_present_rejects_the_file(tmp_path):
    with pytest.raises(PackageRejected, match="required column card_number"):
        _ingest(tmp_path, "columns:\n  record_id: Ref\n  transaction_time: When\n",
                [["A1", "2001-01-01", CARD, "", "", "", "", "", ""]])


def test_title_name():
    assert title_name("O'BRIEN") == "O'Brien"
    assert title_name("SMITH-JONES") == "Smith-Jones"
    assert title_name("MCDONALD") == "McDonald"
    assert title_name("mary ann") == "Mary Ann"


# ----------------------------------------------------------------------------------------------
# Invalid mapping files: a clear error naming the file, the line and the key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("columns:\n  record_id: Ref\n  transaction_tme: When\n",
         ["bad.yaml", "line 3", "columns.transaction_tme", "did you mean transaction_time"]),
        ("columns:\n  record_id:\n    fromm: Ref\n", ["line 3", "columns.record_id.fromm", "unknown key", "from"]),
        ("columns:\n  transaction_time: {from: When, formats: ['%d/%Q/%Y']}\n",
         ["columns.transaction_time.formats", "%Q is not a strptime directive"]),
        ("columns:\n  amount: {from: A, formats: ['%d/%m/%Y']}\n", ["columns.amount.formats", "not a date"]),
        ("columns:\n  currency: {from: C, value: USD}\n", ["columns.currency", "not both"]),
        ("columns:\n  record_id: Ref\n  record_id: Other\n", ["line 3", "'record_id' appears twice"]),
        ("columns:\n  record_id: [Ref\n", ["not valid YAML", "line"]),
        ("split:\n  - from: Name\n    patterns: ['last, first']\n", ["split[0].patterns", "placeholder"]),
        ("split:\n  - from: Name\n    patterns: ['{last_name}{first_name}']\n", ["split[0].patterns", "between"]),
        ("columns:\n  first_name: F\nsplit:\n  - from: Name\n    pattern: '{first_name} {last_name}'\n",
         ["split[0].patterns", "first_name is filled by both"]),
        ("version: 2\ncolumns: {}\n", ["version 2 is not supported"]),
        ("colums:\n  record_id: Ref\n", ["line 1", "colums", "unknown key", "did you mean columns"]),
        ("columns:\n  transaction_time: {from: When, formats: ['%d/%m/%Y'], timezone: Mars/Olympus}\n",
         ["columns.transaction_time", "Mars/Olympus"]),
        ("columns:\n  status: {from: S, case: shout}\n", ["columns.status.case", "lower"]),
        ("", ["empty"]),
        ("- record_id\n", ["line 1", "not a list"]),
    ],
)
def test_invalid_mapping_is_a_clear_error(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as e:
        load_mapping(path)
    message = str(e.value)
    assert message.startswith("bad.yaml: "), message
    for part in expected:
        assert part in message, (part, message)


def test_invalid_mapping_through_the_cli_exits_2_with_one_message(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("columns:\n  record_id: Ref\n  transaction_tme: When\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["-w", str(tmp_path / "ws"), "ingest", str(FOREIGN), "--mapping", str(path), "--package-id", "X"]
    )
    assert result.exit_code == 2
    assert "columns.transaction_tme" in result.output
    assert "Traceback" not in result.output


def test_missing_mapping_file_is_a_clear_error(tmp_path):
    with pytest.raises(OreError, match="no such mapping file"):
        load_mapping(tmp_path / "nope.yaml")
