"""The one source of the stages' SQL, as Spark will run it (no Spark needed here).

Spark runs DuckDB's SQL after sqlglot transpiles it (``ore.stagesql``); the functions Spark lacks or
computes differently get Python twins. These tests hold the twins to DuckDB's own values, and
the stages' SQL to the forms that transpile right, so a rule added in a form Spark cannot run
fails here, in seconds, rather than in the Spark parity test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ore.allocate import allocate
from ore.assess import assess
from ore.corroborate import corroborate, load_policy
from ore.corroborate.stage import _fire
from ore.pipeline import triage
from ore.stagesql import TWINS, DuckDBSQL, to_spark
from ore.synth import generate
from ore.workspace import Workspace

NAMES = st.text(alphabet="aàbcdeéfghiïjklmnoöpqrstuüvwxyzøß -'", max_size=12)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@settings(max_examples=300, deadline=None)
@given(a=NAMES, b=NAMES)
def test_the_spark_twins_give_duckdbs_values(con: duckdb.DuckDBPyConnection, a: str, b: str) -> None:
    for duck_name, (_, twin, _) in TWINS.items():
        args = [a] if duck_name == "strip_accents" else [a, b]
        expected = con.execute(f"SELECT {duck_name}({', '.join('?' * len(args))})", args).fetchall()[0][0]
        assert twin(*args) == pytest.approx(expected, abs=1e-12), (duck_name, args)


def test_the_twins_have_the_names_sqlglot_gives_them() -> None:
    for duck_name, (spark_name, _, _) in TWINS.items():
        args = "a" if duck_name == "strip_accents" else "a, b"
        assert to_spark(f"SELECT {duck_name}({args}) FROM t").startswith(f"SELECT {spark_name.upper()}(")


def test_epoch_keeps_the_microseconds_on_spark() -> None:
    # sqlglot's own choice, UNIX_TIMESTAMP, drops them: two payments a second apart in a window rule
    assert "unix_micros(" in to_spark("SELECT epoch(t) FROM x").lower()


# Spark SQL that sqlglot writes but Spark cannot run, or runs with another meaning
NOT_SPARK = {
    r"\bFIRST\([^)]*ORDER BY": "first(x ORDER BY ...): use arg_min(x, struct_pack(...))",
    r"\[\d+:\d+\]|\+ -1\]": "a list slice or index from the end: use regexp_extract",
    r"\bREGEXP_SPLIT_TO_ARRAY\(": "regexp_split_to_array: use string_split_regex",
    r"\bLIST_\w+\(": "a DuckDB list function",
    r"\bLISTAGG\(DISTINCT": "string_agg(DISTINCT ... ORDER BY): select DISTINCT first",
    r"\bMODE\(": "mode(): its ties differ between engines; count and choose",
    r"\bROW\(|_BY\([^()]+,\s*\(": "a row value: use struct_pack",
}


@dataclass
class Recording(DuckDBSQL):
    """The DuckDB runner, keeping every statement a stage gives it."""

    seen: list[str] = field(default_factory=list)

    def table(self, name: str, query: str) -> None:
        self.seen.append(query)
        super().table(name, query)

    def append(self, name: str, query: str) -> None:
        self.seen.append(query)
        super().append(name, query)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        self.seen.append(query)
        return super().rows(query)


@pytest.fixture(scope="module")
def statements(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Every statement corroborate, assess and allocate run on a small triaged scenario."""
    tmp = tmp_path_factory.mktemp("stagesql")
    generate(tmp / "scenario", people=600, subscribers=40, seed=3)
    ws = Workspace.open(tmp / "ws")
    triage(ws, tmp / "scenario" / "package", tmp / "out", reference=tmp / "scenario" / "reference")
    seen: dict[str, list[str]] = {}
    with ws.duckdb() as con:
        pid = con.execute("SELECT DISTINCT package_id FROM leads").fetchall()[0][0]
        for stage, run in (("corroborate", lambda sql: corroborate(con, pid, None, sql)),
                           ("assess", lambda sql: assess(con, pid, None, sql)),
                           ("allocate", lambda sql: allocate(con, pid, sql))):
            sql = Recording(con)
            run(sql)
            seen[stage] = sql.seen
    return seen


@pytest.mark.parametrize("stage", ["corroborate", "assess", "allocate"])
def test_every_statement_transpiles_to_spark_sql_spark_can_run(statements: dict[str, list[str]], stage: str) -> None:
    assert statements[stage], f"{stage} ran no statement through its runner"
    for query in statements[stage]:
        spark = to_spark(query)
        for pattern, why in NOT_SPARK.items():
            assert not re.search(pattern, spark, re.IGNORECASE), f"{stage}: {why}\n{spark[:600]}"


def test_every_enabled_indicator_is_one_of_the_statements(statements: dict[str, list[str]]) -> None:
    fired = [q for q in statements["corroborate"] if "UNION ALL" in q]
    assert all(_fire(ind).strip() in fired[0] for ind in load_policy().enabled())


def test_the_duckdb_runner_counts_its_statements(con: duckdb.DuckDBPyConnection) -> None:
    sql = DuckDBSQL(con)
    sql.table("_t", "SELECT 1 AS x")
    sql.append("_t", "SELECT 2")
    assert sql.rows("SELECT sum(x) FROM _t") == [(3,)]
    assert (sql.engine, sql.statements) == ("duckdb", 3)
    sql.drop("_t")
    assert not sql.exists("_t")


# Ties: where DuckDB's mode() or arg_max() would choose as the engine happens to scan, the rule
# is explicit, so that DuckDB and Spark choose alike (and DuckDB alike from run to run).


def test_of_two_own_records_at_one_time_the_later_record_decides_the_residence() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE ref_postcode_forces (prefix VARCHAR, force_code VARCHAR, force_name VARCHAR)")
    con.execute("INSERT INTO ref_postcode_forces VALUES ('SK', 'GMP', 'Greater Manchester'), ('CT', 'KNT', 'Kent')")
    con.execute("CREATE TABLE identified_persons (package_id VARCHAR, person_id VARCHAR, postcode VARCHAR)")
    con.execute("CREATE TABLE resolved_records (package_id VARCHAR, record_id VARCHAR, person_id VARCHAR)")
    con.execute("CREATE TABLE leads (package_id VARCHAR, record_id VARCHAR, transaction_time TIMESTAMP,"
                " postcode VARCHAR, country VARCHAR)")
    con.execute("CREATE TABLE record_evidence (package_id VARCHAR, record_id VARCHAR, fraud_suspected BOOLEAN)")
    con.execute("INSERT INTO identified_persons VALUES ('K', 'p', NULL)")
    # r1 first, so that a choice by scan order would take r1's
    for record, postcode in (("r1", "SK1 1AA"), ("r2", "CT16 0AX")):
        con.execute("INSERT INTO resolved_records VALUES ('K', ?, 'p')", [record])
        con.execute("INSERT INTO leads VALUES ('K', ?, '2000-01-01 10:00:00', ?, 'GB')", [record, postcode])
        con.execute("INSERT INTO record_evidence VALUES ('K', ?, false)", [record])
    allocate(con, "K")
    assert con.execute("SELECT postcode, force_code FROM person_force").fetchall() == [("CT16 0AX", "KNT")]
