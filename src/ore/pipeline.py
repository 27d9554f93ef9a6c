"""Triage of one package: ingest, resolve, corroborate, assess, allocate, report.

Each stage reads the tables of the stages before it and replaces its own rows
for the package, so a triage can be re-run (with another policy, say) without
duplicating anything.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ore import __version__
from ore.allocate import allocate, load_nspl
from ore.assess import assess, load_policy
from ore.corroborate import corroborate
from ore.ingest import FileReport, IngestReport, ingest, load_reference
from ore.ingest.package import Mapping
from ore.report import write_outputs, write_report
from ore.resolve import make_engine, resolve
from ore.stagesql import DuckDBSQL, StageSQL
from ore.workspace import Workspace

Step = Callable[[str], None]


@dataclass
class TriageSummary:
    package_id: str
    out: Path
    ingest: IngestReport
    reference: list[FileReport] = field(default_factory=list)
    bands: dict[str, int] = field(default_factory=dict)
    allocation: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    engine: str = "duckdb"
    # per stage, the engine that ran its SQL and how many statements: {"assess": {"spark": 9}}
    statements: dict[str, dict[str, int]] = field(default_factory=dict)


def triage(
    ws: Workspace,
    package: Path,
    out: Path,
    *,
    reference: Path | None = None,
    postcodes: Path | None = None,
    mapping: Mapping | None = None,
    mapping_text: str | None = None,
    package_id: str | None = None,
    policy: Path | None = None,
    fraud_policy: Path | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
    step: Step | None = None,
    engine: str = "duckdb",
) -> TriageSummary:
    """Run every stage for ``package`` and write the triage output files and report into ``out``.

    ``engine``: where the bulk work runs, ``duckdb`` (this machine) or ``spark``
    (``ORE_SPARK_MASTER``, local by default): resolve scores its pairs on Splink's Spark backend,
    and corroborate, assess and allocate run their SQL on Spark SQL (``ore.stagesql``).
    """
    say: Step = step or (lambda _: None)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        say(name)
        start = time.perf_counter()
        result = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        return result

    kwargs: dict[str, Any] = {"progress": progress} if progress else {}
    report = timed("ingest", lambda: ingest(ws, package, mapping=mapping, mapping_text=mapping_text,
                                            package_id=package_id, **kwargs))
    refs = timed("reference", lambda: load_reference(ws, reference, **kwargs)) if reference else []
    pid = report.package_id
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rules = load_policy(policy)  # fail on a bad policy before the long stages
    summary = TriageSummary(pid, out, report, refs, engine=engine)
    scorer = timed("engine", lambda: make_engine(engine, ws.tmp)) if engine != "duckdb" else None
    with ws.lock(f"triage {pid}"), ws.duckdb() as con:
        if postcodes:
            timed("postcodes", lambda: load_nspl(con, postcodes))
        try:
            timed("resolve", lambda: resolve(con, pid, out, scorer))
            sql: StageSQL = scorer.stage_sql(con) if scorer is not None else DuckDBSQL(con)

            def stage(name: str, fn: Callable[[], Any]) -> Any:
                before = sql.statements
                result = timed(name, fn)
                summary.statements[name] = {sql.engine: sql.statements - before}
                return result

            stage("corroborate", lambda: corroborate(con, pid, fraud_policy, sql))
            summary.bands = stage("assess", lambda: assess(con, pid, policy, sql))
            summary.allocation = stage("allocate", lambda: allocate(con, pid, sql))
        finally:
            if scorer is not None:
                scorer.close()
        summary.files = timed("write", lambda: write_outputs(con, pid, out, rules.min_link_probability,
                                                             rules.possible_link_probability,
                                                             parquet=engine == "spark"))
        timed("report", lambda: write_report(con, pid, out / "report.html"))
    summary.seconds = timings
    _write_run_record(summary)
    return summary


def _write_run_record(summary: TriageSummary) -> None:
    """run.json beside the output: what ran, when, on what, and how long each stage took."""
    record = {
        "package_id": summary.package_id,
        "ore_version": __version__,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "ingest": summary.ingest.status,
        "engine": summary.engine,
        "bands": summary.bands,
        "allocation": summary.allocation,
        "files": summary.files,
        "seconds": summary.seconds,
        "statements": summary.statements,
    }
    (summary.out / "run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
