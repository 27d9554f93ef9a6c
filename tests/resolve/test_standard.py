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
