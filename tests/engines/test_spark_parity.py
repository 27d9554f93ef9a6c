"""The Spark engine gives the same triage as DuckDB: the same persons, bands and forces.

Runs Spark in local mode (pyspark from the ``spark`` extra, Java 17). Only resolve's pairwise
scoring moves to Spark (``ore.resolve.engine``); the test compares whole triage outputs, so any
difference in the linkage shows as a different person, band, force or link.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ore.cli import app
from ore.synth import generate

pytestmark = [pytest.mark.spark, pytest.mark.slow]

if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed (pip install 'ore[spark]'): Spark engine tests skipped",
                allow_module_level=True)
if shutil.which("java") is None:
    pytest.skip("no java on PATH (the Spark engine needs Java 17): Spark engine tests skipped",
                allow_module_level=True)


def _triage(tmp: Path, scenario: Path, engine: str) -> Path:
    out = tmp / f"out-{engine}"
    result = CliRunner().invoke(app, ["--workspace", str(tmp / f"ws-{engine}"), "triage", str(scenario / "package"),
                                      "--reference", str(scenario / "reference"), "--out", str(out),
                                      "--engine", engine])
    assert result.exit_code == 0, result.output
    return out


def _read(out: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    with (out / "records.csv").open(encoding="utf-8") as f:
        records = {r["record_id"]: r["person_id"] for r in csv.DictReader(f)}
    with (out / "persons.csv").open(encoding="utf-8") as f:
        persons = {r["person_id"]: r for r in csv.DictReader(f)}
    return records, persons


def test_spark_and_duckdb_give_the_same_persons_bands_and_forces(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario"
    generate(scenario, people=3_000, subscribers=150, seed=5)
    d_records, d_persons = _read(_triage(tmp_path, scenario, "duckdb"))
    s_records, s_persons = _read(_triage(tmp_path, scenario, "spark"))
    assert s_records == d_records
    compared = ("kind", "priority", "priority_reasons", "force_code", "evidence_grade", "likely_victim",
                "register_ref", "conviction_refs", "employment_refs", "children_in_household", "open_case_refs")
    differ = {pid: {k: (p[k], s_persons[pid][k]) for k in compared if p[k] != s_persons[pid][k]}
              for pid, p in d_persons.items() if pid in s_persons}
    assert {pid: d for pid, d in differ.items() if d} == {}
    assert set(s_persons) == set(d_persons)
    assert (tmp_path / "out-spark" / "splink_model_leads.json").exists()
