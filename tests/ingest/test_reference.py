"""Reference holdings load through the same readers and quarantine rules as leads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadpkg import CARD, open_ws, quarantine, query, settings_env, table_count
from ore.cli import app
from ore.errors import OreError, PackageRejected
from ore.ingest import load_reference

from shared_paths import SAMPLE  # noqa: E402


def write_reference(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.csv").write_text(text, encoding="utf-8")
    return directory


ALERTS = (
    "card_number,reported_on,alert_type\n"
    f"{CARD},2000-01-27,stolen\n"
    "4111111111111112,2000-01-27,stolen\n"  # fails Luhn
    f"{CARD},,lost\n"  # reported_on is required
    f"{CARD},2000-02-01,eaten\n"  # an unknown alert type is blanked with a warning
)
HOUSEHOLDS = (
    "address_line1,postcode,children_under_18\n"
    "1 High Street,TN31 7AA,2\n"
    "2 High Street,TN31 7AB,two\n"
    "3 High Street,TN31 7AC,-1\n"
    "4 High Street,TN31 7AD,\u00b2\n"  # a superscript two: isdigit() but not a number
    "5 High Street,TN31 7AE,99999999999\n"
    "6 High Street,,1\n"
    "7 High Street,TN31 7AF,0\n"
)


def test_bad_card_and_bad_children_count_quarantined_rest_loaded(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ref = write_reference(tmp_path / "ref", card_alerts=ALERTS, households=HOUSEHOLDS)
    reports = {r.file: r for r in load_reference(ws, ref)}
    alerts, households = reports["reference/card_alerts.csv"], reports["reference/households.csv"]
    assert (alerts.rows_read, alerts.accepted, alerts.quarantined, alerts.warnings) == (4, 2, 2, 1)
    assert (households.rows_read, households.accepted, households.quarantined) == (7, 2, 5)
    q = {(r["file"], r["line"]): (r["field"], r["reason"]) for r in quarantine(ws)}
    assert q[("reference/card_alerts.csv", 3)] == ("card_number", "card_number fails Luhn check")
    assert q[("reference/card_alerts.csv", 4)][0] == "reported_on"
    for line in (3, 4, 5, 6):
        assert q[("reference/households.csv", line)][0] == "children_under_18"
    assert q[("reference/households.csv", 7)][0] == "postcode"
    assert query(ws, "SELECT postcode, children_under_18 FROM ref_households ORDER BY line") == [
        ("TN31 7AA", 2), ("TN31 7AF", 0)]
    assert query(ws, "SELECT card_masked, alert_type FROM ref_card_alerts ORDER BY line") == [
        ("411111******1111", "stolen"), ("411111******1111", None)]


def test_reload_of_unchanged_reference_is_a_noop(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ref = write_reference(tmp_path / "ref", card_alerts=ALERTS, households=HOUSEHOLDS)
    first = load_reference(ws, ref)
    before = query(ws, "SELECT * FROM reference_loads ORDER BY file"), query(ws, "SELECT * FROM ref_households")
    again = load_reference(ws, ref)
    assert again == first
    assert (query(ws, "SELECT * FROM reference_loads ORDER BY file"), query(ws, "SELECT * FROM ref_households")) \
        == before
    assert table_count(ws, "quarantine") == 7


def test_changed_file_replaces_its_previous_load_only(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ref = write_reference(tmp_path / "ref", card_alerts=ALERTS, households=HOUSEHOLDS)
    load_reference(ws, ref)
    write_reference(ref, households="address_line1,postcode,children_under_18\n9 Low Road,TN1 1AA,3\n")
    reports = {r.file: r for r in load_reference(ws, ref)}
    assert reports["reference/households.csv"].rows_read == 1
    assert query(ws, "SELECT postcode FROM ref_households") == [("TN1 1AA",)]
    assert table_count(ws, "ref_card_alerts") == 2
    files = [r["file"] for r in quarantine(ws)]
    assert files == ["reference/card_alerts.csv"] * 2, "the old households quarantine went with its load"


def test_a_rejected_file_leaves_the_previous_holdings_whole(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ref = write_reference(tmp_path / "ref", card_alerts=ALERTS, households=HOUSEHOLDS)
    load_reference(ws, ref)
    before = {t: query(ws, f"SELECT * FROM {t} ORDER BY line") for t in ("ref_card_alerts", "ref_households")}
    # a new households file (loaded before card_alerts.csv), then an alerts file without its card column
    write_reference(ref, households="address_line1,postcode,children_under_18\n9 Low Road,TN1 1AA,3\n",
                    card_alerts="reported_on,alert_type\n2001-01-01,lost\n")
    with pytest.raises(PackageRejected, match="card_alerts.csv.*card_number"):
        load_reference(ws, ref)
    after = {t: query(ws, f"SELECT * FROM {t} ORDER BY line") for t in ("ref_card_alerts", "ref_households")}
    assert after == before, "a rejected load changes nothing, not even the files before the bad one"


def test_directory_without_reference_files(tmp_path):
    ws = open_ws(tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OreError, match="holds none of the reference files"):
        load_reference(ws, tmp_path / "empty")
    with pytest.raises(OreError, match="not a directory"):
        load_reference(ws, tmp_path / "missing")


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared sample public-1 not present")
def test_sample_reference_through_the_cli(tmp_path):
    env = settings_env(tmp_path / "ws")
    runner = CliRunner()
    first = runner.invoke(app, ["reference", "load", str(SAMPLE / "reference")], env=env)
    assert first.exit_code == 0, first.output
    ws = open_ws(tmp_path / "ws")
    counts = {f: n for f, n in query(ws, "SELECT file, rows_read FROM reference_loads")}
    for name, n in counts.items():
        lines = (SAMPLE / "reference" / name).read_text(encoding="utf-8").count("\n")
        assert n == lines - 1, name
    assert query(ws, "SELECT sum(rows_read) = sum(accepted) + sum(quarantined) FROM reference_loads") == [(True,)]
    loaded = query(ws, "SELECT file, loaded_at FROM reference_loads ORDER BY file")
    second = runner.invoke(app, ["reference", "load", str(SAMPLE / "reference")], env=env)
    assert second.exit_code == 0, second.output
    assert query(ws, "SELECT file, loaded_at FROM reference_loads ORDER BY file") == loaded
    assert table_count(ws, "ref_register") == counts["register.csv"]
