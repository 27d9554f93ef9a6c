"""Every identified person is shown with a name, even when no one record gives both best names."""

from __future__ import annotations

from test_holdings import PKG, _insert_lead, package_world

from ore.resolve import resolve


def test_name_shown_when_first_and_surname_come_from_different_records(sample_ws, tmp_path):
    with package_world(sample_ws, tmp_path) as con:
        # the full first name only on the record whose surname is mistyped; the other gives an initial
        _insert_lead(con, "ZZ-SH-1", "Sheula Sajnders", None, "sheila_367@example.org", "132 Marlborough Cl",
                     "Plymouth", "PL22 8HU", "tok-sheila")
        _insert_lead(con, "ZZ-SH-2", "S Saunders", None, "sheila_367@example.org", "132 Marlborough Cl",
                     "Plymouth", "PL22 8HU", "tok-sheila")
        resolve(con, PKG, None)
        rows = con.execute("""SELECT DISTINCT p.first_name, p.last_name, p.display_name FROM identified_persons p
                              JOIN resolved_records r USING (package_id, person_id)
                              WHERE p.package_id = ? AND r.record_id LIKE 'ZZ-SH-%'""", [PKG]).fetchall()
    assert len(rows) == 1
    first, last, shown = rows[0]
    assert shown and shown.upper() == f"{first} {last}".upper() == f"SHEULA {last.upper()}"
