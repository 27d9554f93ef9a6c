"""Writes ``person_priority`` for a package: every identified person and unidentified subject.

The facts are gathered by SQL on a ``StageSQL`` (DuckDB, or Spark SQL); the bands are the policy's
rules applied in Python to each person's few facts; the rows are written to the workspace.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from ore.assess.bands import Assessment, assess_person
from ore.assess.facts import gather
from ore.assess.policy import Policy, load_policy
from ore.stagesql import DuckDBSQL, StageSQL, lit, replace_package_rows


def _unidentified(sql: StageSQL, package_id: str, policy: Policy) -> dict[str, Assessment]:
    """Subjects who visited the sites bought content; those who never did were billing stolen cards."""
    out: dict[str, Assessment] = {}
    pkg = lit(package_id)
    sql.inputs(package_id, "unidentified_subjects", "record_evidence", "leads", "visits")
    visits = ("SELECT DISTINCT username FROM visits WHERE package_id = " + pkg) if sql.exists("visits") else (
        "SELECT CAST(NULL AS VARCHAR) AS username WHERE false")
    for sid, cards, visited in sql.rows(
        f"""
        WITH seen AS (SELECT DISTINCT e.subject_id
                      FROM record_evidence e JOIN leads l USING (package_id, record_id)
                      JOIN ({visits}) v ON v.username = l.username
                      WHERE e.package_id = {pkg} AND e.subject_id IS NOT NULL)
        SELECT s.subject_id, s.card_count, seen.subject_id IS NOT NULL
        FROM unidentified_subjects s LEFT JOIN seen USING (subject_id)
        WHERE s.package_id = {pkg} ORDER BY s.subject_id
        """
    ):
        key = "visited" if visited else "billing_only"
        rule = policy.unidentified[key]
        out[sid] = Assessment(rule.band or "none", [f"unidentified_{key}"],
                              [rule.sentence.format(cards=cards)])
    return out


def assess(con: duckdb.DuckDBPyConnection, package_id: str, policy_path: Path | None = None,
           sql: StageSQL | None = None) -> dict[str, int]:
    """Band every person of the package into the workspace ``con``; returns the count per band.
    The facts' SQL runs on ``sql`` (the workspace's DuckDB unless given)."""
    policy = load_policy(policy_path)
    sql = sql or DuckDBSQL(con)
    results = {pid: assess_person(f, policy) for pid, f in gather(sql, package_id, policy.min_link_probability,
                                                        policy.possible_link_probability).items()}
    results.update(_unidentified(sql, package_id, policy))
    con.execute(
        "CREATE TABLE IF NOT EXISTS person_priority (package_id VARCHAR, person_id VARCHAR, priority VARCHAR,"
        " reasons VARCHAR, sentences VARCHAR)"
    )
    ids = sorted(results)
    batch = pa.table({
        "package_id": [package_id] * len(ids),
        "person_id": ids,
        "priority": [results[i].priority for i in ids],
        "reasons": [";".join(results[i].reasons) for i in ids],
        "sentences": [json.dumps(results[i].sentences, ensure_ascii=False) for i in ids],
    })
    replace_package_rows(con, "person_priority", package_id, batch)
    counts: dict[str, int] = {}
    for a in results.values():
        counts[a.priority] = counts.get(a.priority, 0) + 1
    return counts
