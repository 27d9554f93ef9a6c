"""A scenario goes through `ore ingest` with exactly its malformed rows quarantined; `ore synth` works."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from synthkit import read_csv
from typer.testing import CliRunner

from ore.cli import app
from ore.ingest import ingest, load_reference
from ore.ingest.quarantine import quarantined_rows
from ore.synth import SynthSummary, generate
from ore.workspace import Workspace


def test_ingest_quarantines_exactly_the_malformed_rows(tmp_path: Path, scenario: SynthSummary) -> None:
    ws = Workspace.open(tmp_path / "ws")
    report = ingest(ws, scenario.package_dir)
    leads = next(f for f in report.files if f.file == "leads.csv")
    truth = read_csv(scenario.truth_dir / "records.csv")
    bad_lines = {i + 2 for i, t in enumerate(truth) if t["label"] == "malformed"}  # header is line 1
    assert leads.rows_read == len(truth)
    assert leads.quarantined == len(bad_lines) == scenario.malformed
    q = quarantined_rows(ws, report.package_id)
    assert {r["line"] for r in q if r["file"] == "leads.csv"} == bad_lines
    visits = next(f for f in report.files if f.file == "visits.csv")
    assert visits.quarantined == 0 and visits.accepted == scenario.visits
    for ref in load_reference(ws, scenario.reference_dir):
        assert ref.quarantined == 0 and ref.warnings == 0, ref


def test_cli_synth(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "scen"
    args = [
        "synth",
        str(out),
        "--people",
        "3000",
        "--subscribers",
        "150",
        "--seed",
        "5",
        "--difficulty",
        "easy",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "lead records" in result.output
    for rel in (
        "package/manifest.json",
        "package/leads.csv",
        "package/visits.csv",
        "reference/register.csv",
        "reference/postcode_forces.csv",
        "truth/records.csv",
        "truth/persons.csv",
        "truth/actors.csv",
    ):
        assert (out / rel).is_file(), rel
    before = (out / "package/leads.csv").read_bytes()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "not empty" in refused.output
    again = runner.invoke(app, [*args[:-2], "--difficulty", "hard", "--force"])
    assert again.exit_code == 0, again.output
    assert (out / "package/leads.csv").read_bytes() != before
    bad = runner.invoke(app, ["synth", str(tmp_path / "b"), "--difficulty", "brutal"])
    assert bad.exit_code == 2 and "difficulty" in bad.output
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ORE_SLOW_TESTS") != "1", reason="population scale: set ORE_SLOW_TESTS=1")
def test_two_million_people(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate(tmp_path / "big", people=2_000_000, subscribers=1_500, seed=3)
    elapsed = time.perf_counter() - started
    assert summary.rows["reference/households.csv"] > 900_000
    assert elapsed < 300, f"2M people took {elapsed:.0f} s"
