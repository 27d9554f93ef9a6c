"""A whole package in: the shared sample, re-ingest, and the CSV shapes real files come in."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadpkg import (LEADS_HEADER, csv_text, lead, open_ws, quarantine, query, settings_env, table_count,
                     write_package)
from ore.cli import app
from ore.errors import PackageRejected
from ore.ingest import ingest

from shared_paths import SAMPLE  # noqa: E402
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared sample public-1 not present")


# --- the shared sample -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    ws = open_ws(tmp_path_factory.mktemp("sample") / "ws")
    report = ingest(ws, SAMPLE / "package")
    return ws, report


@needs_sample
def test_sample_malformed_rows_quarantined_every_valid_row_accepted(sample_ws):
    ws, report = sample_ws
    with (SAMPLE / "truth" / "records.csv").open(newline="", encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    malformed = Counter(r["record_id"] for r in truth if r["label"] == "malformed")
    valid = [r["record_id"] for r in truth if r["label"] != "malformed"]
    assert sum(malformed.values()) == 20

    leads, visits = report.files
    assert leads.rows_read == len(truth) == leads.accepted + leads.quarantined
    assert (leads.accepted, leads.quarantined) == (len(valid), 20)
    assert visits.rows_read == visits.accepted + visits.quarantined

    quarantined = [q for q in quarantine(ws) if q["file"] == "leads.csv"]
    assert Counter(q["record_id"] for q in quarantined) == malformed
    accepted = [r for (r,) in query(ws, "SELECT record_id FROM leads")]
    assert sorted(accepted) == sorted(valid)
    # a duplicate keeps its first occurrence: the quarantined one is the later line
    for q in quarantined:
        if q["record_id"] in valid:
            (first,) = query(ws, "SELECT line FROM leads WHERE record_id = ?", [q["record_id"]])[0]
            assert first < q["line"]
            assert "more than once" in q["reason"]
    reasons = " | ".join(q["reason"] for q in quarantined)
    for words in ("record_id is missing", "fails Luhn", "card_number is missing", "not an ISO 8601",
                  "in the future", "not a number", "not a positive finite number", "more than once"):
        assert words in reasons


@needs_sample
def test_sample_quarantine_lines_point_at_the_rows(sample_ws):
    ws, _ = sample_ws
    lines = (SAMPLE / "package" / "leads.csv").read_text(encoding="utf-8").splitlines()
    for q in quarantine(ws):
        assert lines[q["line"] - 1].startswith(q["record_id"] + ",")


@needs_sample
def test_sample_reingest_is_a_noop_that_says_so(sample_ws):
    ws, first = sample_ws
    before = table_count(ws, "leads"), table_count(ws, "visits"), table_count(ws, "quarantine")
    again = ingest(ws, SAMPLE / "package")
    assert again.status == "already ingested"
    assert [(f.file, f.rows_read, f.accepted, f.quarantined) for f in again.files] == [
        (f.file, f.rows_read, f.accepted, f.quarantined) for f in first.files]
    assert (table_count(ws, "leads"), table_count(ws, "visits"), table_count(ws, "quarantine")) == before


# --- re-ingest and package identity ------------------------------------------------------------------


def test_cli_ingest_prints_accounting_and_twice_says_already_ingested(tmp_path):
    pkg = write_package(tmp_path / "pkg", [lead(1), lead(2, amount="-1"), lead(3)])
    runner = CliRunner()
    env = settings_env(tmp_path / "ws")
    first = runner.invoke(app, ["ingest", str(pkg)], env=env)
    assert first.exit_code == 0, first.output
    assert "leads.csv: 3 rows read = 2 accepted + 1 quarantined" in first.output
    second = runner.invoke(app, ["ingest", str(pkg)], env=env)
    assert second.exit_code == 0, second.output
    assert "already ingested" in second.output
    ws = open_ws(tmp_path / "ws")
    assert table_count(ws, "leads") == 2
    assert table_count(ws, "quarantine") == 1
    assert table_count(ws, "packages") == 1


def test_same_package_id_with_different_content_is_refused_and_nothing_changes(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "a", [lead(1), lead(2)], package_id="P-1"))
    before = query(ws, "SELECT * FROM leads ORDER BY line"), query(ws, "SELECT * FROM packages")
    other = write_package(tmp_path / "b", [lead(1), lead(2), lead(3)], package_id="P-1")
    with pytest.raises(PackageRejected, match="P-1.*different content"):
        ingest(ws, other)
    assert (query(ws, "SELECT * FROM leads ORDER BY line"), query(ws, "SELECT * FROM packages")) == before


def test_two_packages_with_distinct_ids_both_land(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "a", [lead(1)], package_id="P-1"))
    ingest(ws, write_package(tmp_path / "b", [lead(1)], package_id="P-2"))
    assert query(ws, "SELECT package_id, record_id FROM leads ORDER BY package_id") == [
        ("P-1", "R000001"), ("P-2", "R000001")]


def test_missing_required_column_rejects_the_package_and_writes_nothing(tmp_path):
    ws = open_ws(tmp_path / "ws")
    header = [h for h in LEADS_HEADER if h != "card_number"]
    pkg = write_package(tmp_path / "pkg", csv_text([lead(1)], header=header))
    with pytest.raises(PackageRejected, match="leads.csv: line 1: required column.*card_number"):
        ingest(ws, pkg)
    assert table_count(ws, "leads") == table_count(ws, "packages") == 0


def test_a_failure_while_loading_rolls_back_everything(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1), lead(2)], visits="wrong,header\nx,y\n")
    with pytest.raises(PackageRejected, match="visits.csv"):
        ingest(ws, pkg)
    assert table_count(ws, "leads") == table_count(ws, "quarantine") == table_count(ws, "ingest_files") == 0
    # and the package can then be sent again, corrected, under the same id
    ok = write_package(tmp_path / "ok", [lead(1), lead(2)])
    assert ingest(ws, ok).status == "ingested"


def test_no_such_package_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope")], env=settings_env(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "no such file or directory" in result.output


# --- CSV as it comes -----------------------------------------------------------------------------------


def test_bom_in_header(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "pkg", "\ufeff" + csv_text([lead(1)])))
    assert query(ws, "SELECT record_id FROM leads") == [("R000001",)]


def test_bom_before_a_quoted_header(tmp_path):
    text = csv_text([lead(1)])
    header, rest = text.split("\n", 1)
    quoted = ",".join(f'"{h}"' for h in header.split(","))
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "pkg", "\ufeff" + quoted + "\n" + rest))
    assert query(ws, "SELECT record_id FROM leads") == [("R000001",)]


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_line_endings(tmp_path, newline):
    text = csv_text([lead(1), lead(2, amount="x"), lead(3)], newline=newline)
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", text))
    assert (report.files[0].accepted, report.files[0].quarantined) == (2, 1)
    assert [q["line"] for q in quarantine(ws)] == [3]
    assert query(ws, "SELECT line, record_id FROM leads ORDER BY line") == [(2, "R000001"), (4, "R000003")]


def test_mixed_newlines_keep_line_numbers(tmp_path):
    rows = csv_text([lead(i, amount="x" if i == 4 else "1.00") for i in range(1, 6)]).split("\n")
    text = rows[0] + "\r\n" + rows[1] + "\n" + rows[2] + "\r\n" + rows[3] + "\n" + rows[4] + "\r\n" + rows[5]
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", text))
    assert report.files[0].rows_read == 5
    assert [q["line"] for q in quarantine(ws)] == [5]


def test_quoted_field_with_embedded_newline_keeps_later_line_numbers(tmp_path):
    rows = [lead(1, address_line1="Flat 2\nThe Mews"), lead(2, amount="x"), lead(3, address_line2="a\r\nb\nc")
            , lead(4, amount="y")]
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", csv_text(rows)))
    assert (report.files[0].accepted, report.files[0].quarantined) == (2, 2)
    # the header is line 1; row 1 spans lines 2-3, row 2 is line 4, row 3 spans 5-7, row 4 is line 8
    assert [q["line"] for q in quarantine(ws)] == [4, 8]
    assert query(ws, "SELECT line, address_line1 FROM leads ORDER BY line") == [
        (2, "Flat 2\nThe Mews"), (5, "1 High Street")]


def test_blank_lines_are_not_rows(tmp_path):
    rows = csv_text([lead(1), lead(2, amount="x")]).split("\n")
    text = rows[0] + "\n\n" + rows[1] + "\n\n\n" + rows[2] + "\n\n"
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", text))
    assert report.files[0].rows_read == 2
    assert [q["line"] for q in quarantine(ws)] == [6]


def test_duplicate_headers_rejected_clearly(tmp_path):
    header = [*LEADS_HEADER, "email"]
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", csv_text([lead(1)], header=header))
    with pytest.raises(PackageRejected, match="leads.csv: line 1: header 'email' appears twice"):
        ingest(ws, pkg)
    assert table_count(ws, "leads") == 0


def test_blank_header_name_rejected_clearly(tmp_path):
    header = [*LEADS_HEADER, ""]
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", csv_text([lead(1)], header=header))
    with pytest.raises(PackageRejected, match=f"column {len(header)} has no header name"):
        ingest(ws, pkg)


def test_empty_leads_file_rejected_clearly(tmp_path):
    ws = open_ws(tmp_path / "ws")
    with pytest.raises(PackageRejected, match="leads.csv: the file is empty"):
        ingest(ws, write_package(tmp_path / "pkg", b""))


def test_header_only_is_an_empty_package(tmp_path):
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", csv_text([])))
    assert (report.files[0].rows_read, report.status) == (0, "ingested")


# --- an unbalanced quote ---------------------------------------------------------------------------


def unbalanced(n: int, bad: int, quoted_names: bool = False) -> str:
    """n rows, row ``bad`` with a field that opens a quote and never closes it."""
    lines = csv_text([lead(i) for i in range(1, n + 1)]).splitlines()
    if quoted_names:  # every row has a quoted field, so the stray quote closes on the next row
        lines = [lines[0]] + [ln.replace(",John,", ',"John",') for ln in lines[1:]]
    lines[bad] = lines[bad].replace(",1 High Street,", ',"1 High Street,')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("bad", [3, 200, 499])
def test_unbalanced_quote_quarantines_its_row_and_not_the_rest(tmp_path, bad):
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", unbalanced(500, bad)))
    leads = report.files[0]
    assert leads.rows_read == leads.accepted + leads.quarantined
    (q,) = quarantine(ws)
    assert q["line"] == bad + 1
    assert q["record_id"] == f"R{bad:06d}"
    assert "quote" in q["reason"]
    assert (leads.rows_read, leads.accepted) == (500, 499)


def test_unbalanced_quote_closed_by_a_later_row(tmp_path):
    ws = open_ws(tmp_path / "ws")
    report = ingest(ws, write_package(tmp_path / "pkg", unbalanced(20, 5, quoted_names=True)))
    leads = report.files[0]
    assert (leads.rows_read, leads.accepted, leads.quarantined) == (20, 19, 1)
    (q,) = quarantine(ws)
    assert (q["line"], q["record_id"]) == (6, "R000005")
    assert "quote" in q["reason"]


def test_unbalanced_quote_and_the_manifest_agree(tmp_path):
    """The sender counted 500 rows; ore counts the same, so the package is not rejected for it."""
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", unbalanced(500, 10), rows={"leads.csv": 500})
    assert ingest(ws, pkg).files[0].rows_read == 500


# --- reading the quarantine back -------------------------------------------------------------------


def test_quarantine_export_neutralises_spreadsheet_formulas(tmp_path):
    pkg = write_package(tmp_path / "pkg", [lead(1, record_id="=HYPERLINK(\"http://x\")", amount="x"),
                                           lead(2, amount="@SUM(A1)")])
    env = settings_env(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(pkg)], env=env).exit_code == 0
    out = tmp_path / "q.csv"
    result = runner.invoke(app, ["quarantine", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["line"] for r in rows] == ["2", "3"]
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@")), value
    assert rows[0]["record_id"] == "'=HYPERLINK(\"http://x\")"


def test_quarantine_listing_shows_markup_like_values_as_text(tmp_path):
    pkg = write_package(tmp_path / "pkg", [lead(1, amount="[/]"), lead(2, amount="[bold]x")])
    env = settings_env(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(pkg)], env=env).exit_code == 0
    result = runner.invoke(app, ["quarantine"], env=env)
    assert result.exit_code == 0, result.output
    assert "'[/]'" in result.output and "'[bold]x'" in result.output


def test_rejection_message_quoting_markup_like_data_is_printed_as_text(tmp_path):
    pkg = write_package(tmp_path / "pkg", csv_text([lead(1)], header=[*LEADS_HEADER, "[/]", "[/]"]))
    result = CliRunner().invoke(app, ["ingest", str(pkg)], env=settings_env(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "header '[/]' appears twice" in result.output
