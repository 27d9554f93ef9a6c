"""The Spark engine gives the same triage as DuckDB: the same persons, bands and forces.

Runs Spark in local mode (pyspark from the ``spark`` extra, Java 17). One scenario is triaged once
on each engine (a Spark triage costs minutes on 2 cores, so the module shares the two runs):
resolve scores its pairs on Splink's Spark backend, and corroborate, assess and allocate run their
SQL on Spark SQL (``ore.stagesql``). The tests compare the whole outputs, and every table those
stages write, so any difference in linkage, an indicator, a band or a force shows.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ore.cli import app
from ore.synth import generate
from ore.workspace import Workspace

pytestmark = [pytest.mark.spark, pytest.mark.slow]

if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed (pip install 'ore[spark]'): Spark engine tests skipped",
                allow_module_level=True)
if shutil.which("java") is None:
    pytest.skip("no java on PATH (the Spark engine needs Java 17): Spark engine tests skipped",
                allow_module_level=True)

STAGES = ("corroborate", "assess", "allocate")
# what corroborate, assess and allocate write, and the key that orders each
STAGE_TABLES = {"record_indicators": "record_id, code", "record_evidence": "record_id",
                "person_evidence": "person_id", "unidentified_subjects": "subject_id",
                "person_priority": "person_id", "person_force": "person_id"}


def _triage(tmp: Path, scenario: Path, engine: str) -> Path:
    out = tmp / f"out-{engine}"
    result = CliRunner().invoke(app, ["--workspace", str(tmp / f"ws-{engine}"), "triage", str(scenario / "package"),
                                      "--reference", str(scenario / "reference"), "--out", str(out),
                                      "--engine", engine])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("parity")
    scenario = tmp / "scenario"
    generate(scenario, people=3_000, subscribers=150, seed=5)
    return {"tmp": tmp, **{engine: _triage(tmp, scenario, engine) for engine in ("duckdb", "spark")}}


def _read(out: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    with (out / "records.csv").open(encoding="utf-8") as f:
        records = {r["record_id"]: r["person_id"] for r in csv.DictReader(f)}
    with (out / "persons.csv").open(encoding="utf-8") as f:
        persons = {r["person_id"]: r for r in csv.DictReader(f)}
    return records, persons


def _stage_tables(ws_root: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Workspace.open(ws_root).duckdb(read_only=True) as con:
        tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY {key}").fetchall() for t, key in STAGE_TABLES.items()}
    # Splink's Spark backend estimates its weights a little differently (its Jaro-Winkler differs
    # from DuckDB's), so a holdings link's probability may read 99.8% on one engine and 99.9% on the
    # other; the links themselves are the same (the persons test). Sentences are compared without it.
    tables["person_priority"] = [(*row[:4], re.sub(r"link probability [0-9.]+%", "link probability ?", row[4]))
                                 for row in tables["person_priority"]]
    return tables


def test_spark_and_duckdb_give_the_same_persons_bands_and_forces(runs: dict[str, Path]) -> None:
    d_records, d_persons = _read(runs["duckdb"])
    s_records, s_persons = _read(runs["spark"])
    assert s_records == d_records
    compared = ("kind", "priority", "priority_reasons", "force_code", "evidence_grade", "likely_victim",
                "register_ref", "conviction_refs", "employment_refs", "children_in_household", "open_case_refs")
    differ = {pid: {k: (p[k], s_persons[pid][k]) for k in compared if p[k] != s_persons[pid][k]}
              for pid, p in d_persons.items() if pid in s_persons}
    assert {pid: d for pid, d in differ.items() if d} == {}
    assert set(s_persons) == set(d_persons)
    assert (runs["spark"] / "splink_model_leads.json").exists()


def test_the_later_stages_ran_their_sql_on_spark(runs: dict[str, Path]) -> None:
    """run.json names the engine that ran each stage's statements: Spark's, not the workspace's DuckDB."""
    spark = json.loads((runs["spark"] / "run.json").read_text(encoding="utf-8"))
    duck = json.loads((runs["duckdb"] / "run.json").read_text(encoding="utf-8"))
    for stage in STAGES:
        assert list(spark["statements"][stage]) == ["spark"], stage
        assert spark["statements"][stage]["spark"] > 0, stage
        assert spark["statements"][stage]["spark"] == duck["statements"][stage]["duckdb"], stage


def test_every_table_the_stages_write_is_the_same_on_both_engines(runs: dict[str, Path]) -> None:
    """Indicators with their sentences and weights, scores, grades, subjects, bands with their
    sentences, forces with their rules: row for row."""
    duck = _stage_tables(runs["tmp"] / "ws-duckdb")
    spark = _stage_tables(runs["tmp"] / "ws-spark")
    for table in STAGE_TABLES:
        assert duck[table], f"{table} is empty: the scenario tests nothing"
        only_duck = sorted(set(duck[table]) - set(spark[table]), key=repr)[:5]
        only_spark = sorted(set(spark[table]) - set(duck[table]), key=repr)[:5]
        assert (only_duck, only_spark) == ([], []), table
        assert spark[table] == duck[table], table


def test_the_spark_triage_also_writes_records_and_persons_as_parquet(runs: dict[str, Path]) -> None:
    """Parquet out: the CSVs' rows and columns, an empty cell null; the DuckDB triage writes the CSVs alone."""
    import pyarrow.parquet as pq

    for name in ("records", "persons"):
        with (runs["spark"] / f"{name}.csv").open(encoding="utf-8") as f:
            rows = [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(f)]
        assert rows
        assert pq.read_table(runs["spark"] / f"{name}.parquet").to_pylist() == rows
        assert not (runs["duckdb"] / f"{name}.parquet").exists()


def test_the_spark_runner_keeps_insert_and_row_semantics(runs: dict[str, Path], tmp_path: Path) -> None:
    """On the session the Spark triage started: an append goes by position and takes the table's
    types (as INSERT), rows keep two columns of one name apart, and an empty table comes back to
    the workspace with its columns."""
    import duckdb
    from pyspark.sql import SparkSession

    from ore.stagesql import SparkSQL

    spark = SparkSession.getActiveSession()
    assert spark is not None
    con = duckdb.connect()
    con.execute("CREATE TABLE leads AS SELECT * FROM (VALUES ('K', 'r1', TIMESTAMP '2000-01-01 10:00:00.25'),"
                " ('L', 'r2', TIMESTAMP '2000-01-02 00:00:00')) t(package_id, record_id, transaction_time)")
    sql = SparkSQL(spark, con, tmp_path)
    try:
        sql.inputs("K", "leads")  # the package's rows alone
        sql.table("_t", "SELECT record_id AS id, epoch(transaction_time) AS ts FROM leads")
        sql.append("_t", "SELECT 7 AS other_name, 1")  # by position, cast to (string, double)
        assert sql.rows("SELECT id, ts, max(ts), max(ts) FROM _t GROUP BY ALL ORDER BY id") == [
            ("7", 1.0, 1.0, 1.0), ("r1", 946720800.25, 946720800.25, 946720800.25)]
        sql.table("_empty", "SELECT id, ts FROM _t WHERE false")
        sql.keep("_t", "_empty")
        assert con.execute("SELECT * FROM _t ORDER BY id").fetchall() == [("7", 1.0), ("r1", 946720800.25)]
        assert con.execute("SELECT count(*) FROM _empty").fetchall() == [(0,)]
        assert [c[0] for c in con.execute("SELECT * FROM _empty").description] == ["id", "ts"]
        assert sql.statements == 4 and sql.engine == "spark"
    finally:
        sql.close()
