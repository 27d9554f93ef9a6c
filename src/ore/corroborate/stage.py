"""The corroborate stage: indicators per record, combined by policy weights, judged per person.

Bulk work is SQL, run by a ``StageSQL`` (``ore.stagesql``: the workspace's DuckDB, or Spark SQL);
Python only assembles the queries from the policy. The outputs are written to the workspace.
Outputs (docs/pipeline-tables.md): ``record_indicators``, ``record_evidence``, ``person_evidence``,
``unidentified_subjects``; a re-run for a package replaces that package's rows.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ore.corroborate import base, subjects
from ore.corroborate.indicators import SPECS
from ore.corroborate.policy import Indicator, Policy, load_policy
from ore.stagesql import DuckDBSQL, StageSQL

OUTPUT_SCHEMA = """
CREATE TABLE IF NOT EXISTS record_indicators (
    package_id VARCHAR, record_id VARCHAR, code VARCHAR, weight DOUBLE, sentence VARCHAR
);
CREATE TABLE IF NOT EXISTS record_evidence (
    package_id VARCHAR, record_id VARCHAR, fraud_score DOUBLE, fraud_suspected BOOLEAN,
    indicators VARCHAR, subject_id VARCHAR
);
CREATE TABLE IF NOT EXISTS person_evidence (
    package_id VARCHAR, person_id VARCHAR, evidence_grade VARCHAR, likely_victim BOOLEAN, grade_reasons VARCHAR
);
CREATE TABLE IF NOT EXISTS unidentified_subjects (
    package_id VARCHAR, subject_id VARCHAR, display_name VARCHAR, record_count BIGINT, card_count BIGINT,
    identifiers VARCHAR
);
"""
OUTPUT_TABLES = ("record_indicators", "record_evidence", "person_evidence", "unidentified_subjects")


@dataclass(frozen=True)
class CorroborateSummary:
    package_id: str
    records: int
    fraud_suspected: int
    persons: int
    likely_victims: int
    grades: dict[str, int]
    subjects: int
    subject_records: int
    indicator_counts: dict[str, int] = field(default_factory=dict)
    policy: str = "default"
    policy_digest: str = ""


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def sentence_sql(template: str, alias: str = "q") -> str:
    """A SQL expression filling the template's {placeholders} from the query's columns."""
    parts: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        if literal:
            parts.append(_sql_str(literal))
        if name is not None:
            parts.append(f"coalesce(CAST({alias}.{name} AS VARCHAR), '?')")
    return " || ".join(parts) if parts else "''"


def _weight_sql(ind: Indicator, alias: str = "q") -> str:
    if not ind.tiers:
        return repr(float(ind.weight or 0.0))
    cases = " ".join(f"WHEN {alias}.n >= {t.at_least} THEN {t.weight!r}" for t in reversed(ind.tiers))
    return f"CASE {cases} ELSE 0.0 END"


def _fire(ind: Indicator) -> str:
    """The query of the indicator's firings, as rows of ``_cb_fired``."""
    spec = SPECS[ind.code]
    params = dict(ind.params)
    if ind.tiers:
        params["threshold"] = ind.threshold
    query = spec.sql(params)
    where = f"WHERE q.n >= {ind.threshold}" if ind.tiers else ""
    return f"""
        SELECT q.record_id, {_sql_str(ind.code)}, {_sql_str(ind.group)}, {_sql_str(ind.side)},
               {_weight_sql(ind)}, {sentence_sql(ind.sentence)}
        FROM ({query}) AS q {where}
        """


KEPT = ("_cb_contrib", "_cb_score", "_cb_subject", "_cb_subjects", "_cb_person")  # what _write reads


def corroborate(
    con: duckdb.DuckDBPyConnection, package_id: str, policy: Path | str | Policy | None = None,
    sql: StageSQL | None = None,
) -> CorroborateSummary:
    """Judge every record of ``package_id`` and every person it was resolved to; write the outputs
    to the workspace ``con``. The working SQL runs on ``sql`` (the workspace's DuckDB unless given)."""
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    sql = sql or DuckDBSQL(con)
    try:
        base.build(sql, package_id, pol.ip_prefix_octets, pol.rotating_proxy_min_ips)
        sql.table("_cb_fired", "SELECT CAST(NULL AS VARCHAR) AS record_id, CAST(NULL AS VARCHAR) AS code, "
                  "CAST(NULL AS VARCHAR) AS grp, CAST(NULL AS VARCHAR) AS side, CAST(NULL AS DOUBLE) AS weight, "
                  "CAST(NULL AS VARCHAR) AS sentence WHERE false")
        if pol.enabled():  # one statement for all: on Spark, each statement is a job with a fixed cost
            sql.append("_cb_fired", "\nUNION ALL\n".join(_fire(ind) for ind in pol.enabled()))
        _propagate(sql, pol)
        _score(sql, pol)
        subjects.cluster(sql, pol)
        _persons(sql, pol)
        sql.keep(*KEPT)
        _write(con, package_id)
        return _summary(con, sql, package_id, pol)
    finally:
        base.drop(sql)
        sql.drop(*KEPT, "_cb_voided")


THREAD_PREFIX = "On another payment with this card through this account: "


def _propagate(sql: StageSQL, pol: Policy) -> None:
    """Fraud indicators marked ``propagate`` also count on the other records of their thread."""
    codes = [i.code for i in pol.enabled() if i.propagate]
    if not codes:
        return
    listed = ", ".join(_sql_str(c) for c in codes)
    sql.append(
        "_cb_fired",
        f"""
        WITH src AS (
            SELECT r2.record_id, f.code, f.grp, f.side, f.weight, f.sentence,
                   row_number() OVER (PARTITION BY r2.record_id, f.code ORDER BY f.weight DESC, f.record_id) AS k
            FROM _cb_fired f
            JOIN _cb_rec r1 ON r1.record_id = f.record_id
            JOIN _cb_rec r2 ON r2.thread = r1.thread AND r2.record_id <> r1.record_id
            WHERE f.code IN ({listed}))
        SELECT s.record_id, s.code, s.grp, s.side, s.weight, {_sql_str(THREAD_PREFIX)} || s.sentence
        FROM src s
        WHERE s.k = 1 AND NOT EXISTS (
            SELECT 1 FROM _cb_fired g WHERE g.record_id = s.record_id AND g.code = s.code AND g.weight >= s.weight)
        """
    )
    # where a record's own firing was weaker than its thread's, keep only the stronger
    sql.table(
        "_cb_fired",
        """
        SELECT record_id, code, grp, side, weight, sentence FROM (
            SELECT *, row_number() OVER (PARTITION BY record_id, code ORDER BY weight DESC, sentence) AS k
            FROM _cb_fired)
        WHERE k = 1
        """
    )


def _void_map_sql(pol: Policy) -> str:
    """(code, voider) pairs: the cardholder-side code is not counted where the voider fired."""
    pairs = [
        f"({_sql_str(ind.code)}, {_sql_str(v)})"
        for ind in pol.enabled()
        if ind.side == "cardholder"
        for v in ind.void_if
    ]
    if not pairs:
        return "SELECT CAST(NULL AS VARCHAR) AS code, CAST(NULL AS VARCHAR) AS voider WHERE false"
    return "SELECT * FROM (VALUES " + ", ".join(pairs) + ") AS m(code, voider)"


def _score(sql: StageSQL, pol: Policy) -> None:
    # A voided cardholder-side indicator is kept, with weight 0 and a note. Within a group only
    # the strongest indicator counts; its effective weight is recorded so that
    # prior + sum(effective weights) is the record's score, auditable line by line.
    sql.table(
        "_cb_voided",
        f"""
        WITH m AS ({_void_map_sql(pol)}),
             v AS (SELECT c.record_id, c.code, min(m.voider) AS voided_by
                   FROM _cb_fired c JOIN m ON m.code = c.code
                   JOIN _cb_fired f ON f.record_id = c.record_id AND f.code = m.voider
                   WHERE c.side = 'cardholder'
                   GROUP BY c.record_id, c.code)
        SELECT f.*, v.voided_by FROM _cb_fired f LEFT JOIN v USING (record_id, code)
        """
    )
    sql.table(
        "_cb_contrib",
        """
        SELECT record_id, code, grp, side, weight,
               CASE WHEN voided_by IS NOT NULL THEN 0.0
                    WHEN row_number() OVER (PARTITION BY record_id, grp
                                            ORDER BY (voided_by IS NULL) DESC, abs(weight) DESC, code) = 1
                    THEN weight ELSE 0.0 END AS effective,
               CASE WHEN voided_by IS NULL THEN sentence
                    ELSE sentence || ' Not counted: this record also shows ' || voided_by || '.' END AS sentence
        FROM _cb_voided
        """
    )
    sql.table(
        "_cb_score",
        f"""
        WITH s AS (SELECT record_id, sum(effective) AS w,
                          string_agg(code, ';' ORDER BY weight DESC, code) FILTER (WHERE side = 'fraud') AS codes
                   FROM _cb_contrib GROUP BY record_id)
        SELECT r.record_id, r.person_id,
               round({pol.prior_log_odds!r} + coalesce(s.w, 0.0), 4) AS fraud_score,
               {pol.prior_log_odds!r} + coalesce(s.w, 0.0) > {pol.fraud_threshold!r} AS fraud_suspected,
               coalesce(s.codes, '') AS indicators
        FROM _cb_rec r LEFT JOIN s USING (record_id)
        """
    )


def _persons(sql: StageSQL, pol: Policy) -> None:
    sql.table(
        "_cb_person",
        f"""
        WITH ch AS (SELECT DISTINCT record_id, code FROM _cb_contrib WHERE side = 'cardholder' AND effective < 0),
             rec AS (SELECT s.person_id, s.record_id, s.fraud_suspected, count(ch.code) AS n_ch
                     FROM _cb_score s LEFT JOIN ch USING (record_id)
                     WHERE s.person_id IS NOT NULL GROUP BY ALL),
             p AS (SELECT person_id, count(*) AS n, count(*) FILTER (WHERE fraud_suspected) AS nf,
                          count(*) FILTER (WHERE NOT fraud_suspected AND n_ch > 0) AS n_corr
                   FROM rec GROUP BY person_id),
             -- distinct first: Spark cannot order a DISTINCT string_agg (listagg)
             pc AS (SELECT DISTINCT s.person_id, ch.code FROM _cb_score s JOIN ch USING (record_id)
                    WHERE NOT s.fraud_suspected AND s.person_id IS NOT NULL),
             codes AS (SELECT person_id, count(*) AS n_codes, string_agg(code, ';' ORDER BY code) AS codes
                       FROM pc GROUP BY person_id),
             j AS (SELECT p.*, coalesce(codes.n_codes, 0) AS n_codes, codes.codes,
                          (p.nf > 0 AND p.nf > {pol.fraud_share_above!r} * p.n
                           AND p.n_corr <= {pol.max_corroborated_clean_records}) AS likely_victim
                   FROM p LEFT JOIN codes USING (person_id))
        SELECT person_id, likely_victim,
               CASE WHEN likely_victim THEN 'C'
                    WHEN n_codes >= {pol.min_cardholder_codes} THEN 'A' ELSE 'B' END AS evidence_grade,
               concat_ws(';',
                   CASE WHEN likely_victim AND nf = n THEN 'all_records_fraud_suspected'
                        WHEN likely_victim THEN 'most_records_fraud_suspected'
                        WHEN nf > 0 THEN 'some_records_fraud_suspected' END,
                   CASE WHEN NOT likely_victim THEN codes END,
                   CASE WHEN NOT likely_victim AND n_codes < {pol.min_cardholder_codes} THEN 'not_corroborated' END
               ) AS grade_reasons
        FROM j
        """
    )


def _write(con: duckdb.DuckDBPyConnection, package_id: str) -> None:
    con.execute(OUTPUT_SCHEMA)
    con.execute("BEGIN TRANSACTION")
    try:
        for t in OUTPUT_TABLES:
            con.execute(f"DELETE FROM {t} WHERE package_id = ?", [package_id])
        con.execute(
            """
            INSERT INTO record_indicators
            SELECT $pkg, record_id, code, effective, sentence FROM _cb_contrib ORDER BY record_id, code
            """,
            {"pkg": package_id},
        )
        con.execute(
            """
            INSERT INTO record_evidence
            SELECT $pkg, s.record_id, s.fraud_score, s.fraud_suspected, s.indicators, sj.subject_id
            FROM _cb_score s LEFT JOIN _cb_subject sj USING (record_id) ORDER BY s.record_id
            """,
            {"pkg": package_id},
        )
        con.execute(
            """
            INSERT INTO person_evidence
            SELECT $pkg, person_id, evidence_grade, likely_victim, grade_reasons FROM _cb_person ORDER BY person_id
            """,
            {"pkg": package_id},
        )
        con.execute(
            """
            INSERT INTO unidentified_subjects
            SELECT $pkg, subject_id, display_name, record_count, card_count, identifiers
            FROM _cb_subjects ORDER BY subject_id
            """,
            {"pkg": package_id},
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _summary(con: duckdb.DuckDBPyConnection, sql: StageSQL, package_id: str, pol: Policy) -> CorroborateSummary:
    rec = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE fraud_suspected), count(subject_id) FROM record_evidence "
        "WHERE package_id = ?",
        [package_id],
    ).fetchall()[0]
    per = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE likely_victim) FROM person_evidence WHERE package_id = ?",
        [package_id],
    ).fetchall()[0]
    grades = dict(
        con.execute(
            "SELECT evidence_grade, count(*) FROM person_evidence WHERE package_id = ? GROUP BY 1 ORDER BY 1",
            [package_id],
        ).fetchall()
    )
    subj = con.execute(
        "SELECT count(*) FROM unidentified_subjects WHERE package_id = ?", [package_id]
    ).fetchall()[0][0]
    counts = dict(sql.rows("SELECT code, count(*) FROM _cb_fired GROUP BY code ORDER BY code"))
    return CorroborateSummary(
        package_id=package_id,
        records=rec[0],
        fraud_suspected=rec[1],
        persons=per[0],
        likely_victims=per[1],
        grades={g: grades.get(g, 0) for g in ("A", "B", "C")},
        subjects=subj,
        subject_records=rec[2],
        indicator_counts=counts,
        policy=pol.source,
        policy_digest=pol.digest,
    )
