"""The standard person columns every model compares: names, nicknames, dates, postcodes, addresses."""

from __future__ import annotations

import duckdb

from ore.resolve import standardise


def _std(rows: list[tuple], **kwargs) -> dict[str, dict]:
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (unique_id VARCHAR, full_name VARCHAR, fn VARCHAR, ln VARCHAR, dob DATE, "
                "pc VARCHAR, addr VARCHAR)")
    con.executemany("INSERT INTO raw VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    standardise(con, "raw", "std", full_name="full_name", first_name="fn", last_name="ln", dob="dob",
                postcode="pc", address="addr", **kwargs)
    cur = con.execute("SELECT * FROM std ORDER BY unique_id")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}


def test_card_name_wins_and_is_cleaned():
    out = _std([
        ("1", "MR CIARAN O'CONNOR", "Bob", "Smith", None, "tn14 8rp", "30, Main Cres"),
        ("2", None, "Bob", "Smith", "1970-02-03", "BS10 1LE", "235 Clarence Ave"),
        ("3", "A WATKINS", None, None, None, None, None),
    ])
    assert (out["1"]["first_name"], out["1"]["last_name"]) == ("CIARAN", "OCONNOR")
    assert (out["2"]["first_name"], out["2"]["last_name"]) == ("BOB", "SMITH")  # typed name fills in
    assert (out["3"]["first_name"], out["3"]["last_name"]) == ("A", "WATKINS")
    assert out["2"]["dob"] == "19700203" and out["1"]["dob"] is None


def test_nicknames_meet_formal_names():
    out = _std([("1", "BOB JONES", None, None, None, None, None), ("2", "ROBERT JONES", None, None, None, None, None),
                ("3", "SAM JONES", None, None, None, None, None), ("4", "ZEBEDEE JONES", None, None, None, None, None)])
    assert "ROBERT" in out["1"]["first_formal"] and out["2"]["first_formal"] == ["ROBERT"]
    assert {"SAMUEL", "SAMANTHA"} <= set(out["3"]["first_formal"])  # ambiguous nicknames keep both
    assert out["4"]["first_formal"] == ["ZEBEDEE"]


def test_postcode_parts_and_address():
    out = _std([("1", "X Y", None, None, None, "bs10 1le", "235, CLARENCE AVE"),
                ("2", "X Y", None, None, None, "E2 8GX", "65 High Rd")])
    one, two = out["1"], out["2"]
    assert (one["postcode"], one["pc_sector"], one["pc_outward"], one["pc_area"]) == ("BS101LE", "BS101", "BS10", "BS")
    assert (two["postcode"], two["pc_outward"], two["pc_area"]) == ("E28GX", "E2", "E")
    assert one["address"] == "235 CLARENCE AVENUE" and one["house_no"] == "235"
    assert two["address"] == "65 HIGH ROAD"


def test_a_flat_is_read_wherever_it_was_typed():
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (unique_id VARCHAR, a1 VARCHAR, a2 VARCHAR)")
    con.executemany("INSERT INTO raw VALUES (?, ?, ?)", [
        ("1", "Flat 21, 39 Elm Rd", None),
        ("2", "39 Elm Road", "Flat 21"),
        ("3", "21/39 ELM RD", None),
        ("4", "Flat 21", "39 Elm Road"),       # the other convention: the flat on line 1
        ("5", "39 Elm Road", "Headingley"),    # a locality on line 2 is not a flat
        ("6", "Apt. 3B, 4 Elm Ave", None),
        ("7", "Flatley Road 4", None),         # a street that begins with "Flat"
    ])
    standardise(con, "raw", "std", address="a1", address2="a2")
    got = {r[0]: r[1:] for r in con.execute("SELECT unique_id, flat, street, house_no, address FROM std").fetchall()}
    for k in ("1", "2", "3", "4"):
        assert got[k] == ("21", "39 ELM ROAD", "39", "FLAT 21 39 ELM ROAD"), k
    assert got["5"] == (None, "39 ELM ROAD", "39", "39 ELM ROAD")
    assert got["6"][:3] == ("3B", "4 ELM AVENUE", "4")
    assert got["7"] == (None, "FLATLEY ROAD 4", None, "FLATLEY ROAD 4")
    # the written form reads back unchanged (persons are standardised again for holdings)
    con.execute("CREATE TABLE again AS SELECT unique_id, address AS a1 FROM std")
    standardise(con, "again", "std2", address="a1")
    assert con.execute("SELECT count(*) FROM std JOIN std2 USING (unique_id) "
                       "WHERE std.address IS DISTINCT FROM std2.address").fetchall()[0][0] == 0
