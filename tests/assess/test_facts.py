"""Facts from the stage tables: purchases, months, and the category of a record that lacks one."""

import duckdb

from ore.assess import assess
from ore.ingest.tables import create_schema


def _world() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)  # leads, visits and the holdings tables, as ingest makes them
    con.execute("CREATE TABLE identified_persons (package_id VARCHAR, person_id VARCHAR)")
    con.execute("CREATE TABLE resolved_records (package_id VARCHAR, record_id VARCHAR, person_id VARCHAR)")
    con.execute("CREATE TABLE holding_links (package_id VARCHAR, person_id VARCHAR, holding VARCHAR, ref VARCHAR,"
                " match_probability DOUBLE, match_weight DOUBLE, detail VARCHAR)")
    con.execute("CREATE TABLE person_evidence (package_id VARCHAR, person_id VARCHAR, evidence_grade VARCHAR,"
                " likely_victim BOOLEAN, grade_reasons VARCHAR)")
    con.execute("CREATE TABLE record_evidence (package_id VARCHAR, record_id VARCHAR, fraud_score DOUBLE,"
                " fraud_suspected BOOLEAN, indicators VARCHAR, subject_id VARCHAR)")
    con.execute("CREATE TABLE unidentified_subjects (package_id VARCHAR, subject_id VARCHAR, display_name VARCHAR,"
                " record_count INTEGER, card_count INTEGER, identifiers VARCHAR)")
    return con


def _buy(con, person: str, record: str, product: str, category: str, when: str, fraud: bool = False) -> None:
    con.execute("INSERT INTO identified_persons SELECT 'K', ? WHERE NOT EXISTS "
                "(SELECT 1 FROM identified_persons WHERE person_id = ?)", [person, person])
    con.execute("INSERT INTO resolved_records VALUES ('K', ?, ?)", [record, person])
    con.execute("INSERT INTO leads (package_id, line, record_id, transaction_time, product, product_category, status)"
                " VALUES ('K', 1, ?, ?, ?, ?, 'approved')", [record, when, product, category])
    con.execute("INSERT INTO record_evidence VALUES ('K', ?, 0, ?, '', NULL)", [record, fraud])


def test_missing_category_is_taken_from_the_product_elsewhere_in_the_package() -> None:
    con = _world()
    _buy(con, "adult-buyer", "r1", "ADULT-SITE-1", "adult", "2000-01-01")
    _buy(con, "unknown-adult", "r2", "ADULT-SITE-1", "unknown", "2000-02-01")
    _buy(con, "unknown-abuse", "r3", "CHILD-SITE-1", "abuse", "2000-01-01")
    _buy(con, "unknown-abuse", "r4", "CHILD-SITE-1", "unknown", "2000-03-01")
    _buy(con, "never-seen", "r5", "MYSTERY-9", "unknown", "2000-01-01")
    assess(con, "K")
    bands = dict(con.execute("SELECT person_id, priority || ':' || reasons FROM person_priority").fetchall())
    assert bands["adult-buyer"] == "none:adult_only"
    assert bands["unknown-adult"] == "none:adult_only"
    assert bands["unknown-abuse"] == "P3:repeat_purchases"  # two purchases over two months
    assert bands["never-seen"] == "P4:abuse_purchase"  # unknown stays possibly abuse: children first


def test_records_set_aside_as_fraud_do_not_count_as_purchases() -> None:
    con = _world()
    _buy(con, "p", "r1", "CHILD-SITE-1", "abuse", "2000-01-01")
    _buy(con, "p", "r2", "CHILD-SITE-1", "abuse", "2000-02-01", fraud=True)
    _buy(con, "p", "r3", "CHILD-SITE-1", "abuse", "2000-03-01", fraud=True)
    assess(con, "K")
    assert con.execute("SELECT priority FROM person_priority").fetchall() == [("P4",)]
