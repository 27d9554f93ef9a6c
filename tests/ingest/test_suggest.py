"""``ore ingest --suggest-mapping``: a proposal an analyst can check, and for foreign-1 a complete one.

For foreign-1 the suggestion finds every column the hand-written mapping maps
(including the ``SURNAME, FIRST`` split with title case, the US 12-hour date
format, the ``$`` currency as a USD constant and the capitalised statuses): the
1,000 rows ingest exactly as with ``mappings/foreign-1.yaml``. The test of the
date formats it proposes for other files (day-first, ambiguous, two-digit years)
is below; what it leaves to the analyst it says in comments.
"""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
import yaml
from foreignpkg import COMPARED, FOREIGN, leads, quarantine, write_csv
from typer.testing import CliRunner

from ore.cli import app
from ore.ingest import ingest
from ore.ingest.mapping import example, load_mapping, parse_mapping, suggest
from ore.workspace import Workspace

CARD = "4111111111111111"


@pytest.fixture(scope="module")
def suggested() -> str:
    return suggest(FOREIGN)


def test_suggestion_is_a_valid_mapping_with_comments(suggested):
    model = parse_mapping(suggested, "suggested")
    assert model.columns["record_id"].source == "TXN_REF"
    assert model.columns["card_number"].source == "CC Number"
    assert model.columns["postcode"].source == "Zip/Postcode"
    assert model.columns["username"].source == "Login"
    assert model.columns["ip_country"].source == "Geo"
    assert model.columns["transaction_time"].formats == ["%m/%d/%Y %I:%M %p"]
    assert model.columns["date_of_birth"].formats == ["%m/%d/%Y"]
    assert model.columns["currency"].value == "USD"
    assert model.split[0].source == "Customer Name" and model.split[0].case == "title"
    assert model.split[0].patterns[0] == "{last_name}, {first_name}"
    assert "# Columns not found in the export (left empty): phone" in suggested
    assert re.search(r"card_number: \"CC Number\"  # 100: synonym 'cc number'; values fit", suggested)


def test_suggestion_never_prints_a_card_number_or_personal_value(suggested):
    assert not re.search(r"\d{12,19}", suggested)
    assert "@" not in suggested and "BUTLER" not in suggested


def test_suggested_mapping_ingests_foreign_1_exactly_as_the_hand_written_one(tmp_path, suggested):
    path = tmp_path / "suggested.yaml"
    path.write_text(suggested, encoding="utf-8")
    ws = Workspace.open(tmp_path / "ws")
    ingest(ws, FOREIGN, mapping=load_mapping(path), package_id="SUGGESTED")
    ingest(ws, FOREIGN, mapping=load_mapping(example("foreign-1")), package_id="HAND")
    got, want = leads(ws, "SUGGESTED"), leads(ws, "HAND")
    assert got.keys() == want.keys() and len(got) > 990
    for rid in got:
        for col in COMPARED:
            assert got[rid][col] == want[rid][col], (rid, col)
    assert [(ln, f) for ln, f, _ in quarantine(ws, "SUGGESTED")] == [(ln, f) for ln, f, _ in quarantine(ws, "HAND")]


def test_cli_prints_the_suggestion_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(app, ["-w", str(tmp_path / "ws"), "ingest", "--suggest-mapping", str(FOREIGN)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["columns"]["record_id"] == "TXN_REF"
    assert not (tmp_path / "ws").exists()


# ----------------------------------------------------------------------------------------------
# Other exports


def _suggest(tmp_path: Path, header: list[str], rows: list[list[str]]) -> str:
    return suggest(write_csv(tmp_path / "export.csv", header, rows))


def test_day_first_dates_two_digit_years_and_other_headers(tmp_path):
    rows = [
        [f"{i}", f"{d:02d}/{m:02d}/20{y:02d} {h:02d}:15", CARD, f"£{i},000.50", "OK", f"j{i}@example.org",
         "GB", f"{d:02d}.{m:02d}.7{y}", "x"]
        for i, (d, m, y, h) in enumerate([(25, 12, 1, 9), (3, 4, 2, 17), (14, 2, 0, 23), (1, 1, 1, 0)])
    ]
    text = _suggest(tmp_path, ["Reference", "Trans Date", "cardNumber", "Total", "Result", "E-Mail",
                               "Billing Country", "Birth Date", "Colour"], rows)
    model = parse_mapping(text, "s")
    cols = {k: v.source for k, v in model.columns.items() if v.source}
    assert cols == {"record_id": "Reference", "transaction_time": "Trans Date", "card_number": "cardNumber",
                    "amount": "Total", "status": "Result", "email": "E-Mail", "country": "Billing Country",
                    "date_of_birth": "Birth Date"}
    assert model.columns["transaction_time"].formats == ["%d/%m/%Y %H:%M"]
    assert model.columns["date_of_birth"].formats == ["%d.%m.%y"]  # two-digit years
    assert "two-digit years" in text
    assert model.columns["status"].values == {"OK": "approved"}
    assert model.columns["amount"].amount is not None
    assert model.columns["currency"].value == "GBP"
    assert "'Colour'" in text.split("Source columns not matched")[1]


def test_ambiguous_day_and_month_is_flagged_and_follows_a_clear_column(tmp_path):
    ambiguous = [[f"R{i}", f"0{i}/0{i + 1}/2001", CARD] for i in range(1, 5)]
    text = _suggest(tmp_path, ["record_id", "date", "card_number"], ambiguous)
    assert "AMBIGUOUS" in text
    # a clear day-first date of birth decides the order for the ambiguous transaction dates
    rows = [[*r, f"{20 + i}/0{i}/1980"] for i, r in enumerate(ambiguous, start=1)]
    text = _suggest(tmp_path, ["record_id", "date", "card_number", "DOB"], rows)
    model = parse_mapping(text, "s")
    assert model.columns["transaction_time"].formats == ["%d/%m/%Y"]
    assert model.columns["date_of_birth"].formats == ["%d/%m/%Y"]
    assert "AMBIGUOUS" not in text


def test_first_last_order_12_hour_clock_and_a_card_column_found_by_its_values(tmp_path):
    rows = [[f"R{i}", f"{m}/2{i}/2001 0{i}:05:09 PM", CARD, name]
            for i, (m, name) in enumerate([(1, "John Smith"), (12, "Mary Ann Jones"), (3, "Ali Khan")], start=1)]
    text = _suggest(tmp_path, ["ID", "Timestamp", "col3", "Full Name"], rows)
    model = parse_mapping(text, "s")
    assert model.columns["card_number"].source == "col3"  # no name evidence: found by Luhn-valid values
    assert "by values only" in text
    assert model.columns["transaction_time"].formats == ["%m/%d/%Y %I:%M:%S %p"]
    assert model.split[0].source == "Full Name" and model.split[0].case is None  # mixed case: left as is
    ws = Workspace.open(tmp_path / "ws")
    mfile = tmp_path / "m.yaml"
    mfile.write_text(text, encoding="utf-8")
    ingest(ws, tmp_path / "export.csv", mapping=load_mapping(mfile), package_id="S")
    names = {(r["first_name"], r["last_name"]) for r in leads(ws, "S").values()}
    assert names == {("John", "Smith"), ("Mary Ann", "Jones"), ("Ali", "Khan")}


def test_nothing_recognisable_says_so(tmp_path):
    text = _suggest(tmp_path, ["foo", "bar"], [["1", "2"]])
    assert "REQUIRED and not found: record_id, transaction_time, card_number" in text
    parse_mapping(text, "s")


def test_suggestion_for_a_workbook(tmp_path):
    wb = openpyxl.Workbook()
    for r in [["TXN_REF", "Date", "CC Number", "Zip/Postcode"], ["R1", "05/28/2000 03:44 PM", CARD, "SA1 1AA"]]:
        wb.active.append(r)
    wb.save(tmp_path / "x.xlsx")
    model = parse_mapping(suggest(tmp_path / "x.xlsx"), "s")
    assert {k: v.source for k, v in model.columns.items()} == {
        "record_id": "TXN_REF", "transaction_time": "Date", "card_number": "CC Number", "postcode": "Zip/Postcode"}
