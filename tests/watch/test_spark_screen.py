"""``ore watch screen --engine spark`` gives what the DuckDB engine gives: the same matches, problems, alerts
and leads, nothing for the sealed.

Each feed is screened twice through the public ``screen``, once per engine, on the same operation;
the engine's ``Matches`` (rows with their identity, hits, flagged rows, problems with their lines,
counts) are recorded on the way and compared whole. Spark runs in local mode (pyspark from the
``spark`` extra, Java 17); the CSV is split into several file blocks, so line numbers that crossed
a block wrongly would show.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from casekit import Triaged, card_numbers, clear
from watchkit import FEED_HEADER, OTHER_MERCHANT, Expected, Operation, alerts_seen, later_feed, lead_rows, prepare

from ore.ingest.cards import Tokeniser
from ore.store import Store
from ore.watch import engine as engines
from ore.watch import screen, screening

pytestmark = [pytest.mark.spark, pytest.mark.slow]

if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed (pip install 'ore[spark]'): Spark watch tests skipped",
                allow_module_level=True)
if shutil.which("java") is None:
    pytest.skip("no java on PATH (the Spark engine needs Java 17): Spark watch tests skipped",
                allow_module_level=True)

from ore.watch import spark_engine  # noqa: E402 - after the skips: it needs pyspark
from ore.watch.spark_engine import SCRATCH, SparkEngine  # noqa: E402

SMALL_BLOCKS = {"spark.sql.files.maxPartitionBytes": "2048"}  # a few rows per file block


@dataclass
class Run:
    matches: engines.Matches
    alerts: dict[str, set[tuple[int, str]]]
    leads: list[dict[str, str]]
    problems_csv: str
    counts: dict[str, int]


def _screen(store: Store, t: Triaged, feed: Path, out: Path, engine: Any, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Screen ``feed`` through the public screen on ``engine``, recording what the engine returned."""
    seen: list[engines.Matches] = []

    class Recording:
        name = engine.name

        def screen(self, *args: Any, **kw: Any) -> engines.Matches:
            seen.append(engine.screen(*args, **kw))
            return seen[-1]

    monkeypatch.setattr(screening, "get_engine", lambda name: Recording())
    summary = screen(store, t.ws, feed, out=out, engine=engine.name)
    assert summary.status == "screened"
    return Run(replace(seen[0], seconds={}), alerts_seen(store),
               sorted(lead_rows(summary), key=lambda r: int(r["feed_line"])),
               (out / "problems.csv").read_text(encoding="utf-8"), summary.counts)


def _both(store: Store, t: Triaged, feed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, Run]:
    duck = _screen(store, t, feed, tmp_path / "out-duckdb", engines.DuckDBEngine(), monkeypatch)
    clear(store)  # the same operation again, for the second engine
    prepare(store, t)
    spark = _screen(store, t, feed, tmp_path / "out-spark", SparkEngine(SMALL_BLOCKS), monkeypatch)
    return duck, spark


def _same(duck: Run, spark: Run) -> None:
    d, s = duck.matches, spark.matches
    assert s.problems == d.problems
    assert s.hits == d.hits
    assert s.flagged == d.flagged
    assert s.counts == d.counts
    assert set(s.rows) == set(d.rows)
    for line, row in d.rows.items():
        assert s.rows[line] == row, line
    assert spark.alerts == duck.alerts
    assert spark.leads == duck.leads
    assert spark.problems_csv == duck.problems_csv
    assert spark.counts == duck.counts


def _tricky(op: Operation) -> tuple[list[dict[str, str]], str]:
    """Rows with a value of every kind that one engine's casts or trims could read apart from the other's;
    the first is a convicted person's card typed between tabs (an alert, as ingest reads the number)."""
    card = sorted(op.convicted[1].cards)[0]
    base = {"merchant": OTHER_MERCHANT, "product": "GROCERIES", "currency": "GBP", "email": "", "username": "",
            "ip_address": "", "card_number": ""}
    rows = [{**base, "transaction_time": "2005-06-01T10:00:00", "amount": "1.00", "card_number": f"\t{card} \t"},
            {**base, "transaction_time": "2005-06-01T10:00:00+01:00", "amount": "\u00a012.50\u00a0",
             "card_number": "-", "email": "\u00a0someone@EXAMPLE.org\t"}]
    for i, (when, amount) in enumerate([
            ("2005-06-01T10:00:00.5Z", "1_000"), ("2005-06-01T10:00:00+0100", "0x10"), ("2005-06-01T10", "1e999"),
            ("2005", "NaN"), ("2005-06", "1d"), ("2005-6-1", "+.5"), ("+2005-06-01", "5."),
            ("2005-06-01 10:00:00 UTC", "-1E3"), ("2999-01-01", "Infinity"), ("today", "")]):
        rows.append({**base, "transaction_time": when, "amount": amount,
                     "ip_address": f"\u00a010.0.0.{i}\t" if i % 2 == 0 else f"10.0.0.{i}x",
                     "card_number": "4111 1111 1111 1111" if i % 2 else "4111-1111-1111-1112",
                     "username": f" tricky{i}\t"})
    return rows, card


def test_a_raw_card_csv_gives_the_same_matches_alerts_and_leads(sqlite_store: Store, triaged: Triaged,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    op = prepare(sqlite_store, triaged)
    extra, _ = _tricky(op)
    feed = tmp_path / "feed.csv"
    exp = later_feed(feed, op, known_cards=card_numbers(triaged.scenario), extra=extra)
    first_extra = max(exp.bad_lines) + 1
    exp.alerts[op.convicted[1].ref].add((first_extra, "card"))  # the number between tabs is the person's card

    stale = triaged.ws.tmp / SCRATCH / "screen-interrupted"  # as an interrupted screen would leave it
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "shuffle.data").write_text("4111111111111111", encoding="utf-8")
    exact = []
    monkeypatch.setattr(spark_engine, "_csv_exact", lambda *a: exact.append(1))
    duck, spark = _both(sqlite_store, triaged, feed, tmp_path, monkeypatch)
    assert exact == []  # read by Spark's own CSV reader, in several file blocks
    _same(duck, spark)
    _answers(spark, exp, op)
    problems = {(line, f): m for line, f, m in spark.matches.problems}
    assert problems[(first_extra + 1, "card_number")] == \
        "card_number has characters other than digits, spaces and dashes"  # "-" is ingest's bad number
    assert (first_extra + 1, "amount") not in problems and (first_extra + 1, "transaction_time") not in problems
    assert spark.matches.rows[first_extra]["card_masked"].endswith(sorted(op.convicted[1].cards)[0][-4:])
    assert not any((triaged.ws.tmp / SCRATCH).iterdir())  # this screen's scratch, and the stale one, are gone


def test_a_pre_tokenised_parquet_gives_the_same_matches_alerts_and_leads(sqlite_store: Store, triaged: Triaged,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    op = prepare(sqlite_store, triaged)
    raw = tmp_path / "raw.csv"
    exp = later_feed(raw, op, known_cards=card_numbers(triaged.scenario))
    version, key = triaged.ws.card_key()
    tok = Tokeniser(key, version)
    with raw.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tokens, versions, last4 = [], [], []
    for i, r in enumerate(rows):
        card = r.pop("card_number")
        good = card.isdigit() and card != "4111111111111112"
        tokens.append(tok.token(card).upper() if good and i % 3 == 1 else tok.token(card) if good else "not-a-token")
        versions.append([str(version), "", None, "0", " x"][i % 5] if good else "1.5")
        last4.append(card[-4:] if i % 4 else "12a4")
    amounts = [float(r["amount"]) if r["amount"].replace(".", "").isdigit() else float("nan") for r in rows]
    times = [r["transaction_time"] if r["transaction_time"][:1].isdigit() else None for r in rows]
    table = pa.table({**{h: pa.array([r[h] or None for r in rows], pa.string())
                         for h in FEED_HEADER if h not in ("card_number", "amount", "transaction_time")},
                      "transaction_time": pa.array(times, pa.string()).cast(pa.timestamp("ns")),
                      "amount": pa.array(amounts, pa.float64()), "card_token": pa.array(tokens, pa.string()),
                      "card_key_version": pa.array(versions, pa.string()), "card_last4": pa.array(last4, pa.string())})
    feed = tmp_path / "feed.parquet"
    pq.write_table(table, feed, row_group_size=7)  # typed columns: times in nanoseconds, amounts (NaN among them)
    assert pq.read_schema(feed).field("transaction_time").type == pa.timestamp("ns")

    duck, spark = _both(sqlite_store, triaged, feed, tmp_path, monkeypatch)
    _same(duck, spark)
    # a version that is no key version is a problem and the card is matched under any version; a row is its
    # row number in the file: the CSV's line less the header
    shifted = Expected({ref: {(line - 1, on) for line, on in rows_} for ref, rows_ in exp.alerts.items()},
                       {line - 1 for line in exp.leads}, {line - 1 for line in exp.sealed_lines})
    _answers(spark, shifted, op)
    fields = {f for _, f, _ in spark.matches.problems}
    assert {"card_key_version", "card_last4", "card_token", "amount", "transaction_time"} <= fields


def test_a_csv_whose_records_are_not_lines_gives_the_same_matches(sqlite_store: Store, triaged: Triaged,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A quoted line break and a broken row: Spark is handed ingest's reading, line numbers stay physical."""
    op = prepare(sqlite_store, triaged)
    feed = tmp_path / "feed.csv"
    exp = later_feed(feed, op, known_cards=card_numbers(triaged.scenario))
    last = max(exp.bad_lines)
    person = op.convicted[3]
    with feed.open("a", encoding="utf-8", newline="") as f:
        f.write('2005-06-01T10:00:00,"CORNER\nSHOP",GROCERIES,1.00,GBP,,,,\n'  # lines last+1 and last+2
                "2005-06-01T11:00:00,CORNER SHOP,GROCERIES,1.00,GBP,,,,,ONE TOO MANY\n"  # last+3: not screened
                f"2005-06-01T12:00:00,CORNER SHOP,GROCERIES,2.00,GBP,,{sorted(person.emails)[0]},,\n")  # last+4
    exp.alerts[person.ref].add((last + 4, "email"))
    exact = []
    real = spark_engine._csv_exact
    monkeypatch.setattr(spark_engine, "_csv_exact", lambda *a: exact.append(1) or real(*a))

    duck, spark = _both(sqlite_store, triaged, feed, tmp_path, monkeypatch)
    assert exact == [1]
    _same(duck, spark)
    _answers(spark, exp, op)
    assert [(line, f) for line, f, _ in spark.matches.problems if f == "row"] == [(last + 3, "row")]
    assert spark.counts["rows_not_screened"] == 1


def _answers(run: Run, exp: Expected, op: Operation) -> None:
    """The right alerts and leads: the operation's known answer, nothing for the sealed or eliminated."""
    assert run.alerts == exp.alerts
    assert {int(r["feed_line"]) for r in run.leads} == exp.leads
    hidden = {p.ref for p in op.sealed + op.eliminated}
    assert not hidden & set(run.alerts)
    assert not exp.sealed_lines & {line for rows in run.alerts.values() for line, _ in rows}


def test_get_engine_names_the_spark_engine() -> None:
    assert isinstance(engines.get_engine("spark"), SparkEngine)


def test_spark_scratch_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    """Where the environment sends Spark's scratch files elsewhere (SPARK_LOCAL_DIRS wins over the session's
    setting), no screen starts: clear card numbers would be spilled outside the workspace's tmp."""
    import os
    import subprocess
    import sys

    code = ("from pathlib import Path; from ore.errors import OreError; from ore.watch.spark_engine import session\n"
            "try:\n    session(Path(__import__('sys').argv[1]))\nexcept OreError as e:\n    print('REFUSED', e)\n")
    env = {**os.environ, "SPARK_LOCAL_DIRS": str(tmp_path / "elsewhere"), "PYTHONPATH": os.pathsep.join(sys.path)}
    run = tmp_path / "ws-tmp" / "run"
    run.mkdir(parents=True)
    out = subprocess.run([sys.executable, "-c", code, str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert "REFUSED" in out.stdout and "SPARK_LOCAL_DIRS" in out.stdout, out.stdout + out.stderr[-2000:]
