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


def _link(con, person: str, holding: str, ref: str, p: float) -> None:
    con.execute("INSERT INTO holding_links VALUES ('K', ?, ?, ?, ?, 0, '')", [person, holding, ref, p])


def test_possible_links_are_shown_to_check_but_set_no_band() -> None:
    con = _world()
    _buy(con, "p", "r1", "CHILD-SITE-1", "abuse", "2000-01-01")
    con.execute("INSERT INTO ref_register (register_id, offence_type, risk_level) VALUES ('REG1', 'contact', 'high')")
    con.execute("INSERT INTO ref_open_cases (case_ref, force_code) VALUES ('KNT/1', 'KNT'), ('KNT/2', 'KNT')")
    _link(con, "p", "register", "REG1", 0.8)      # possible: shown, no band
    _link(con, "p", "open_cases", "KNT/1", 0.75)  # possible: listed for deconfliction
    _link(con, "p", "open_cases", "KNT/2", 0.6)   # under the possible bar: nothing
    assess(con, "K")
    band, reasons, sentences = con.execute("SELECT priority, reasons, sentences FROM person_priority").fetchall()[0]
    assert band == "P4"
    assert reasons.split(";") == ["abuse_purchase", "open_case", "possible_link"]
    assert "KNT/1" in sentences and "KNT/2" not in sentences
    assert "register entry REG1 (link probability 80.0%, under the 90.0% that counts)" in sentences


def test_a_certain_register_link_sets_the_band_and_is_not_also_possible() -> None:
    con = _world()
    _buy(con, "p", "r1", "CHILD-SITE-1", "abuse", "2000-01-01")
    con.execute("INSERT INTO ref_register (register_id, offence_type, risk_level) VALUES ('REG1', 'contact', 'high')")
    _link(con, "p", "register", "REG1", 0.95)
    assess(con, "K")
    band, reasons = con.execute("SELECT priority, reasons FROM person_priority").fetchall()[0]
    assert (band, reasons) == ("P1", "registered_offender;abuse_purchase")


def test_a_household_with_children_possibly_theirs_is_shown_to_check() -> None:
    con = _world()
    _buy(con, "p", "r1", "CHILD-SITE-1", "abuse", "2000-01-01")
    _buy(con, "q", "r2", "CHILD-SITE-1", "abuse", "2000-01-01")
    con.execute("INSERT INTO ref_households (address_line1, postcode, children_under_18) "
                "VALUES ('Flat 2, 12 Mill Lane', 'HU1 1AA', 2), "
                "('Flat 1, 40 Quay Street', 'HU1 1AB', 3)")
    _link(con, "p", "households", "Flat 2, 12 Mill Lane|HU1 1AA", 0.8)   # the flat left out: possible
    _link(con, "q", "households", "Flat 1, 40 Quay Street|HU1 1AB", 0.99)
    assess(con, "K")
    rows = con.execute("SELECT person_id, priority, reasons, sentences FROM person_priority").fetchall()
    got = {r[0]: r[1:] for r in rows}
    assert got["p"][:2] == ("P4", "abuse_purchase;possible_link")
    assert "household with 2 child(ren) under 18 at Flat 2, 12 Mill Lane, HU1 1AA" in got["p"][2]
    assert got["q"][:2] == ("P1", "children_in_household;abuse_purchase")


def test_a_possible_conviction_is_named_as_the_conviction_it_is() -> None:
    con = _world()
    _buy(con, "p", "r1", "CHILD-SITE-1", "abuse", "2000-01-01")
    con.execute("INSERT INTO ref_convictions (conviction_ref, offence_category) VALUES ('CRO1', 'sexual_contact_child')")
    _link(con, "p", "convictions", "CRO1", 0.8)
    assess(con, "K")
    sentences = con.execute("SELECT sentences FROM person_priority").fetchall()[0][0]
    assert "the conviction for contact offending against a child CRO1" in sentences


def test_a_product_as_often_adult_as_abuse_counts_as_abuse() -> None:
    con = _world()
    for person, record, category in (("a", "r1", "adult"), ("b", "r2", "abuse"), ("c", "r3", "unknown")):
        con.execute("INSERT INTO identified_persons VALUES ('K', ?)", [person])
        con.execute("INSERT INTO resolved_records VALUES ('K', ?, ?)", [record, person])
        con.execute("INSERT INTO leads (package_id, line, record_id, transaction_time, product, product_category,"
                    " status) VALUES ('K', 1, ?, '2000-01-01', 'SITE-7', ?, 'approved')", [record, category])
        con.execute("INSERT INTO record_evidence VALUES ('K', ?, 0, false, '', NULL)", [record])
    assess(con, "K")
    bands = dict(con.execute("SELECT person_id, priority || ':' || reasons FROM person_priority").fetchall())
    assert bands["a"] == "none:adult_only"
    assert bands["c"] == "P4:abuse_purchase"  # one adult, one abuse record of the site: not set aside
