"""Holdings record the identity as it was then: a formal name, an old address."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from rsfixtures import PACKAGE_ID

from ore.resolve import resolve
from ore.workspace import Workspace

PKG = "TEST-HOLDINGS"
COLS = ("package_id, line, record_id, card_token, cardholder_name, first_name, last_name, date_of_birth, email, "
        "username, address_line1, town, postcode")


def _insert_lead(con, record_id, name, dob, email, address, town, postcode, card):
    first, last = name.split(" ", 1)
    con.execute(f"INSERT INTO leads ({COLS}) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [PKG, record_id, card, name.upper(), first, last, dob, email, email.split("@")[0], address, town,
                 postcode])


def _insert_register(con, ref, first, last, dob, address, town, postcode):
    con.execute("INSERT INTO ref_register (register_id, first_name, last_name, date_of_birth, address_line1, town, "
                "postcode) VALUES (?, ?, ?, ?, ?, ?, ?)", [ref, first, last, dob, address, town, postcode])


@contextmanager
def package_world(sample_ws, tmp_path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A copy of the ingested sample whose leads also stand as package ``PKG``, to add records to."""
    ws = Workspace.open(tmp_path / "ws")
    shutil.copy(sample_ws.duckdb_path, ws.duckdb_path)
    with ws.duckdb() as con:
        con.execute(f"INSERT INTO leads SELECT * REPLACE ('{PKG}' AS package_id) FROM leads "
                    f"WHERE package_id = '{PACKAGE_ID}'")
        yield con


def test_nickname_and_move_link_on_date_of_birth_and_relative_does_not(sample_ws, tmp_path):
    with package_world(sample_ws, tmp_path) as con:
        # "Bob" now in Leeds; the register knows "Robert" at his old Truro address, same date of birth
        _insert_lead(con, "ZZ-BOB-1", "Bob Kempthorne", "1968-04-02", "bobk@example.org", "4 Aire Street", "Leeds",
                     "LS1 4PR", "tok-bob")
        _insert_lead(con, "ZZ-BOB-2", "Bob Kempthorne", None, "bobk@example.org", "4 Aire St", "Leeds",
                     "LS1 4PR", "tok-bob")
        _insert_register(con, "REG-ROBERT", "Robert", "Kempthorne", "1968-04-02", "9 Lemon Street", "Truro",
                         "TR1 2LS")
        # at Bob's address the register also holds his brother: same surname and address, other name and birth
        _insert_register(con, "REG-BROTHER", "Malcolm", "Kempthorne", "1961-11-20", "4 Aire Street", "Leeds",
                         "LS1 4PR")
        resolve(con, PKG, None)
        person = con.execute("SELECT DISTINCT person_id FROM resolved_records WHERE package_id = ? "
                             "AND record_id LIKE 'ZZ-BOB-%'", [PKG]).fetchall()
        assert len(person) == 1
        links = dict(con.execute(
            "SELECT ref, match_probability FROM holding_links WHERE package_id = ? AND person_id = ? "
            "AND holding = 'register'", [PKG, person[0][0]]).fetchall())
    assert links.get("REG-ROBERT", 0) >= 0.9, links
    assert "REG-BROTHER" not in links


def test_same_name_blocking_condition_loses_no_link(sample_ws):
    """The holdings rule on the same full name carries a ``where`` that keeps only the pairs
    the veto could let through: without it the links are exactly the same."""
    import copy

    import duckdb

    from ore.resolve.holdings import link_holdings, load_holdings, load_households
    from ore.resolve.leads import dedupe_leads, load_leads
    from ore.resolve.model import ModelSpec, load_settings

    section = copy.deepcopy(load_settings()["holdings"])
    assert any(isinstance(r, dict) and r.get("where") for r in section["blocking"])
    plain = copy.deepcopy(section)
    plain["blocking"] = [r["equal"] if isinstance(r, dict) else r for r in plain["blocking"]]
    results = []
    for sec in (section, plain):
        scon = duckdb.connect()
        with sample_ws.duckdb() as con:
            load_leads(con, scon, PACKAGE_ID)
            dedupe_leads(scon)
            load_holdings(con, scon)
            load_households(con, scon)
        link_holdings(scon, ModelSpec.from_settings("holdings", sec))
        results.append(scon.execute("SELECT person_id, holding, ref, round(match_probability, 9) FROM holding_link "
                                    "ORDER BY ALL").fetchall())
        scon.close()
    assert results[0] and results[0] == results[1]


def test_sister_and_namesake_with_unlike_dates_of_birth_do_not_link(sample_ws, tmp_path):
    """Dates of birth two digits apart are not agreement enough to excuse another first name (a
    sister at the same address); two known dates of birth wholly unlike, at another postcode of
    the same area, are two people of one name."""
    with package_world(sample_ws, tmp_path) as con:
        _insert_lead(con, "ZZ-SUE-1", "Susan Cooper", "1960-05-16", "scooper@example.org", "68 Stanley Road",
                     "London", "NW9 2XL", "tok-sue")
        _insert_lead(con, "ZZ-SUE-2", "Ssan Cooper", None, "scooper@example.org", "68 Stanley Road", "London",
                     "NW9 2XL", "tok-sue")
        _insert_register(con, "REG-SISTER", "Linda", "Cooper", "1965-08-16", "68 Stanley Road", "London", "NW9 2XL")
        _insert_lead(con, "ZZ-KAUR-1", "Caroline Kaur", "1971-03-02", "ckaur71@example.org", "96 Belmont Road",
                     "Chester", "CH56 9SG", "tok-kaur")
        _insert_register(con, "REG-NAMESAKE", "Caroline", "Kaur", "1983-09-07", "14 Elm Avenue", "Wirral", "CH44 1GE")
        resolve(con, PKG, None)
        linked = con.execute("SELECT ref, match_probability FROM holding_links WHERE package_id = ? "
                             "AND ref IN ('REG-SISTER', 'REG-NAMESAKE')", [PKG]).fetchall()
    assert linked == []


def test_households_meet_a_flat_however_it_was_typed(sample_ws, tmp_path):
    with package_world(sample_ws, tmp_path) as con:
        _insert_lead(con, "ZZ-PRIYA", "Priya Smythe", None, "psmythe@example.org", "97 Abbey Road", "Bangor",
                     "LL37 8GZ", "tok-priya")
        con.execute("UPDATE leads SET address_line2 = 'Flat 7' WHERE record_id = 'ZZ-PRIYA'")
        _insert_lead(con, "ZZ-DEV", "Dev Chauhanx", None, "dchx@example.org", "21/57 OLD RD", "Leeds", "LS25 5DB",
                     "tok-dev")
        _insert_lead(con, "ZZ-MAY", "May Ostrowska", None, "mayo@example.org", "12 Mill Lane", "Hull", "HU1 1AA",
                     "tok-may")
        _insert_lead(con, "ZZ-TOM", "Tom Ostrowski", None, "tomo@example.org", "40 Quay Street", "Hull", "HU1 1AB",
                     "tok-tom")
        con.executemany("INSERT INTO ref_households (address_line1, postcode, children_under_18) VALUES (?, ?, ?)", [
            ("Flat 7, 97 Abbey Road", "LL37 8GZ", 4), ("Flat 8, 97 Abbey Road", "LL37 8GZ", 0),
            ("Flat 21, 57 Old Road", "LS25 5DB", 1),
            ("Flat 2, 12 Mill Lane", "HU1 1AA", 2),                                     # the building's one household
            ("Flat 1, 40 Quay Street", "HU1 1AB", 1), ("Flat 2, 40 Quay Street", "HU1 1AB", 3),  # which one?
        ])
        resolve(con, PKG, None)
        links = con.execute("""SELECT r.record_id, h.ref, h.match_probability FROM holding_links h
                               JOIN resolved_records r USING (package_id, person_id)
                               WHERE h.package_id = ? AND h.holding = 'households' AND r.record_id LIKE 'ZZ-%'
                               ORDER BY 1, 2""", [PKG]).fetchall()
    got = {(rid, ref): p for rid, ref, p in links}
    assert set(got) == {("ZZ-PRIYA", "Flat 7, 97 Abbey Road|LL37 8GZ"), ("ZZ-DEV", "Flat 21, 57 Old Road|LS25 5DB"),
                        ("ZZ-MAY", "Flat 2, 12 Mill Lane|HU1 1AA")}
    assert got[("ZZ-PRIYA", "Flat 7, 97 Abbey Road|LL37 8GZ")] >= 0.99
    assert got[("ZZ-DEV", "Flat 21, 57 Old Road|LS25 5DB")] >= 0.99
    assert got[("ZZ-MAY", "Flat 2, 12 Mill Lane|HU1 1AA")] < 0.9  # the flat left out: possible, to check
