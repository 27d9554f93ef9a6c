"""Two people who share only a common name (and a postcode district) are never merged, nor
linked to a holding on the name alone; the blocking does compare them (same name, same district)."""

from __future__ import annotations

import shutil

from rsfixtures import PACKAGE_ID

from ore.resolve import resolve
from ore.workspace import Workspace

PKG = "TEST-COMMON-NAME"


def _lead(record_id: str, card: str, email: str, postcode: str, address: str, town: str) -> str:
    return f"""SELECT '{PKG}' AS package_id, record_id, card_token, cardholder_name, first_name, last_name,
                      date_of_birth, email, username, address_line1, town, postcode
               FROM (SELECT '{record_id}' AS record_id, '{card}' AS card_token, 'JOHN SMITH' AS cardholder_name,
                            'John' AS first_name, 'Smith' AS last_name, CAST(NULL AS DATE) AS date_of_birth,
                            '{email}' AS email, split_part('{email}', '@', 1) AS username,
                            '{address}' AS address_line1, '{town}' AS town, '{postcode}' AS postcode)"""


def test_common_name_alone_never_merges_or_links(sample_ws, tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    shutil.copy(sample_ws.duckdb_path, ws.duckdb_path)
    cols = ("package_id, record_id, card_token, cardholder_name, first_name, last_name, date_of_birth, email, "
            "username, address_line1, town, postcode")
    with ws.duckdb() as con:
        con.execute(f"""INSERT INTO leads ({cols})
                        SELECT '{PKG}', record_id, card_token, cardholder_name, first_name, last_name, date_of_birth,
                               email, username, address_line1, town, postcode
                        FROM leads WHERE package_id = '{PACKAGE_ID}'""")
        con.execute(f"INSERT INTO leads ({cols}) " + _lead(
            "ZZ-1", "tok-smith-1", "jsmith@example.org", "LS1 4AB", "12 Park Road", "Leeds"))
        con.execute(f"INSERT INTO leads ({cols}) " + _lead(
            "ZZ-2", "tok-smith-2", "john.smith77@example.net", "LS1 9XY", "3 Harbour View", "Leeds"))
        # a third John Smith on the register: other date of birth, other town
        con.execute("""INSERT INTO ref_register (register_id, first_name, last_name, date_of_birth, address_line1,
                                                 town, postcode)
                       VALUES ('REG-SMITH', 'John', 'Smith', DATE '1961-03-14', '7 Mill Lane', 'Norwich', 'NR3 1AA')""")
        resolve(con, PKG, None)
        rows = dict(con.execute(
            "SELECT record_id, person_id FROM resolved_records WHERE package_id = ? AND record_id LIKE 'ZZ-%'",
            [PKG]).fetchall())
        linked = con.execute(
            "SELECT count(*) FROM holding_links WHERE package_id = ? AND ref = 'REG-SMITH'", [PKG]).fetchall()[0][0]
    assert rows["ZZ-1"] != rows["ZZ-2"]
    assert linked == 0
