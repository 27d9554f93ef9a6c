"""allocate(): the residence is the latest own purchase's address; fraud records do not move a person."""

import duckdb

from ore.allocate import allocate


def _tables() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE ref_postcode_forces (prefix VARCHAR, force_code VARCHAR, force_name VARCHAR)")
    con.executemany("INSERT INTO ref_postcode_forces VALUES (?, ?, ?)",
                    [("SK", "GMP", "Greater Manchester"), ("CT", "KNT", "Kent"), ("E", "MPS", "Met")])
    con.execute("CREATE TABLE identified_persons (package_id VARCHAR, person_id VARCHAR, postcode VARCHAR)")
    con.execute("CREATE TABLE resolved_records (package_id VARCHAR, record_id VARCHAR, person_id VARCHAR)")
    con.execute("CREATE TABLE leads (package_id VARCHAR, record_id VARCHAR, transaction_time TIMESTAMP,"
                " postcode VARCHAR, country VARCHAR)")
    con.execute("CREATE TABLE record_evidence (package_id VARCHAR, record_id VARCHAR, fraud_suspected BOOLEAN)")
    return con


def test_latest_own_address_decides_and_fraud_records_do_not() -> None:
    con = _tables()
    con.executemany("INSERT INTO identified_persons VALUES ('K', ?, ?)",
                    [("mover", "SK20 4FD"), ("victim-ish", "SK1 1AA"), ("abroad", "SK2 2AA"), ("nothing", None)])
    rows = [
        ("r1", "mover", "1999-08-01", "SK20 4FD", "GB", False),
        ("r2", "mover", "1999-11-01", "CT16 0AX", "GB", False),  # moved to Kent: latest own purchase
        ("r3", "mover", "2000-01-01", "E2 8GX", "GB", True),  # someone else's use of the card
        ("r4", "victim-ish", "2000-01-01", "SK1 1AA", "GB", False),
        ("r5", "abroad", "2000-01-01", "75001", "FR", False),
    ]
    for rid, pid, when, pc, country, fraud in rows:
        con.execute("INSERT INTO resolved_records VALUES ('K', ?, ?)", [rid, pid])
        con.execute("INSERT INTO leads VALUES ('K', ?, ?, ?, ?)", [rid, when, pc, country])
        con.execute("INSERT INTO record_evidence VALUES ('K', ?, ?)", [rid, fraud])
    # a postcode five different people bill to is no one's home (a mail drop)
    for i in range(5):
        pid = "mover" if i == 0 else f"drop{i}"
        if i:
            con.execute("INSERT INTO identified_persons VALUES ('K', ?, 'SK9 9ZZ')", [pid])
        con.execute("INSERT INTO resolved_records VALUES ('K', ?, ?)", [f"d{i}", pid])
        con.execute("INSERT INTO leads VALUES ('K', ?, '2001-01-01', 'E1 1AA', 'GB')", [f"d{i}"])
        con.execute("INSERT INTO record_evidence VALUES ('K', ?, false)", [f"d{i}"])
    assert allocate(con, "K") == {"allocated": 6, "unallocated": 2}
    got = {r[0]: r[1:] for r in con.execute("SELECT person_id, postcode, force_code, rule FROM person_force").fetchall()}
    assert got["mover"][:2] == ("CT16 0AX", "KNT")
    assert got["victim-ish"][1] == "GMP"
    assert got["abroad"][1] is None and "outside the UK" in got["abroad"][2]
    assert got["nothing"][1] is None and "no postcode" in got["nothing"][2]
    # a re-run replaces, never duplicates
    allocate(con, "K")
    assert con.execute("SELECT count(*) FROM person_force").fetchall()[0][0] == 8
    # with nothing else known, the shared postcode is still used rather than nothing
    assert got["drop1"][:2] == ("E1 1AA", "MPS")
