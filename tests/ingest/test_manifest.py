"""The manifest is checked before anything is written; any disagreement rejects the whole package."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from leadpkg import csv_text, lead, open_ws, settings_env, table_count, write_package
from ore.cli import app
from ore.errors import PackageRejected
from ore.ingest import ingest

VISITS = [{"username": "user1", "visit_time": "2001-06-01T12:05:00", "ip_address": "", "product": ""}]


def assert_nothing_written(ws):
    for table in ("packages", "ingest_files", "leads", "visits", "quarantine", "ingest_warnings"):
        assert table_count(ws, table) == 0, table
    assert not list((ws.root / "keys").iterdir()), "no card key made for a rejected package"
    assert not list(ws.tmp.iterdir())


def refused(ws, pkg, match):
    with pytest.raises(PackageRejected, match=match):
        ingest(ws, pkg)
    assert_nothing_written(ws)


def rejected(tmp_path, match, **kw):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1), lead(2)], visits=VISITS, **kw)
    refused(ws, pkg, match)
    return ws, pkg


def test_sha256_mismatch_names_the_file(tmp_path):
    ws, pkg = rejected(tmp_path, r"leads.csv: sha256 is [0-9a-f]{64}, manifest.json says 0+: the file is not",
                       manifest={"files": {"leads.csv": {"sha256": "0" * 64, "rows": 2},
                                           "visits.csv": {"sha256": "0" * 64, "rows": 1}}})


def test_a_changed_file_is_caught_by_its_hash(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1), lead(2)], visits=VISITS)
    (pkg / "visits.csv").write_text((pkg / "visits.csv").read_text() + "user2,2001-06-01T13:00:00,,\n")
    refused(ws, pkg, "visits.csv: sha256 is")


def test_row_count_mismatch_names_the_file(tmp_path):
    rejected(tmp_path, "leads.csv: has 2 data rows, manifest.json says 3", rows={"leads.csv": 3})


def test_row_count_mismatch_in_visits_rejects_leads_too(tmp_path):
    rejected(tmp_path, "visits.csv: has 1 data rows, manifest.json says 7", rows={"visits.csv": 7})


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"format": "something-else"}, "format is 'something-else'"),
        ({"version": 2}, "version 2 is not supported"),
        ({"version": "1"}, "version '1' is not supported"),
        ({"package_id": ""}, "package_id is missing"),
        ({"package_id": 7}, "package_id is missing"),
        ({"files": {}}, "files must list leads.csv"),
        ({"files": {"leads.csv": {"sha256": "ab"}}}, "leads.csv needs a sha256 string and a rows count"),
        ({"files": {"leads.csv": {"sha256": "ab", "rows": True}}}, "leads.csv needs a sha256 string and a rows"),
        ({"files": {"leads.csv": {"sha256": "ab", "rows": 1}, "extra.csv": {"sha256": "ab", "rows": 1}}},
         "unknown file 'extra.csv'"),
    ],
)
def test_bad_manifest_fields(tmp_path, override, match):
    rejected(tmp_path, match, manifest=override)


def test_file_listed_but_absent(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)], visits=VISITS)
    (pkg / "visits.csv").unlink()
    refused(ws, pkg, "visits.csv: listed in manifest.json but not in the package")


def test_file_present_but_not_listed(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)])
    (pkg / "visits.csv").write_text("username,visit_time\n")
    refused(ws, pkg, "visits.csv: present in the package but not listed")


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b"\xff\xfe{}"])
def test_unreadable_manifest(tmp_path, content):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)])
    (pkg / "manifest.json").write_bytes(content)
    refused(ws, pkg, "manifest.json")


def test_no_manifest(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)])
    (pkg / "manifest.json").unlink()
    refused(ws, pkg, "no manifest.json")


def test_manifest_with_a_bom_is_read(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)])
    (pkg / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (pkg / "manifest.json").read_bytes())
    assert ingest(ws, pkg).status == "ingested"


def test_uppercase_sha_is_accepted(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)])
    m = json.loads((pkg / "manifest.json").read_text())
    m["files"]["leads.csv"]["sha256"] = m["files"]["leads.csv"]["sha256"].upper()
    (pkg / "manifest.json").write_text(json.dumps(m))
    assert ingest(ws, pkg).status == "ingested"


def test_cli_rejection_is_one_clear_line_exit_2_and_no_card_numbers(tmp_path):
    rows = [lead(1), lead(2)]
    pkg = write_package(tmp_path / "pkg", rows, rows={"leads.csv": 9})
    result = CliRunner().invoke(app, ["ingest", str(pkg)], env=settings_env(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "leads.csv: has 2 data rows, manifest.json says 9" in result.output
    assert "Traceback" not in result.output
    for r in rows:
        assert r["card_number"] not in result.output
    assert_nothing_written(open_ws(tmp_path / "ws"))


def test_headerless_file_is_rejected_without_echoing_a_card(tmp_path):
    """A file sent without its header row: its first data row is taken for the header."""
    ws = open_ws(tmp_path / "ws")
    row = lead(1, first_name="x", last_name="x")
    text = csv_text([row, lead(2)]).split("\n", 1)[1]
    pkg = write_package(tmp_path / "pkg", text)
    with pytest.raises(PackageRejected) as e:
        ingest(ws, pkg)
    assert row["card_number"] not in str(e.value)


def test_a_file_changed_after_the_check_is_caught_and_nothing_written(tmp_path):
    """A file still being copied into the package: it agreed with the manifest when checked, not when read."""
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1), lead(2)], visits=VISITS)

    def meddle(label, done, total):  # called as leads.csv is read, after the manifest check
        if label == "leads.csv":
            with (pkg / "leads.csv").open("a") as f:
                f.write(csv_text([lead(3)]).split("\n", 1)[1])

    with pytest.raises(PackageRejected, match="leads.csv: changed while it was being read"):
        ingest(ws, pkg, progress=meddle)
    for table in ("packages", "ingest_files", "leads", "visits", "quarantine"):
        assert table_count(ws, table) == 0, table
