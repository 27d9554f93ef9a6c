"""Every quarantine rule of leads.csv and visits.csv, one small package each.

A rule-breaking row is kept with its line and a reason naming the field; the rest
of the package goes in; rows read = accepted + quarantined.
"""

from __future__ import annotations

import json

import pytest

from leadpkg import LEADS_HEADER, card, csv_text, lead, open_ws, quarantine, query, write_package
from ore.ingest import ingest


def ingest_rows(tmp_path, rows, **kw):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", rows, **kw)
    return ws, ingest(ws, pkg)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"record_id": ""}, "record_id", "record_id is missing"),
        ({"record_id": "   "}, "record_id", "record_id is missing"),
        ({"card_number": ""}, "card_number", "card_number is missing"),
        ({"card_number": "4111111111111112"}, "card_number", "fails Luhn"),
        ({"card_number": "4111 1111 abcd 1111"}, "card_number", "other than digits"),
        ({"card_number": "41111111"}, "card_number", "8 digits"),
        ({"transaction_time": ""}, "transaction_time", "transaction_time is missing"),
        ({"transaction_time": "yesterday"}, "transaction_time", "not an ISO 8601"),
        ({"transaction_time": "2001-13-45T99:00:00"}, "transaction_time", "not an ISO 8601"),
        ({"transaction_time": "2999-01-01T00:00:00"}, "transaction_time", "in the future"),
        ({"transaction_time": "2999-01-01"}, "transaction_time", "in the future"),
        ({"amount": "twenty"}, "amount", "not a number"),
        ({"amount": "-5.00"}, "amount", "not a positive finite number"),
        ({"amount": "0"}, "amount", "not a positive finite number"),
        ({"amount": "NaN"}, "amount", "not a positive finite number"),
        ({"amount": "Infinity"}, "amount", "not a positive finite number"),
        ({"amount": "1e999999"}, "amount", "not a positive finite number"),
        ({"amount": "1e-999999"}, "amount", "not a positive finite number"),
        ({"status": "stolen"}, "status", "status"),
        ({"product_category": "other"}, "product_category", "product_category"),
    ],
)
def test_rule_quarantines_the_row_and_keeps_the_rest(tmp_path, fields, field, reason):
    rows = [lead(1), lead(2, **fields), lead(3)]
    ws, report = ingest_rows(tmp_path, rows)
    leads = report.files[0]
    assert (leads.rows_read, leads.accepted, leads.quarantined) == (3, 2, 1)
    (q,) = quarantine(ws)
    assert q["line"] == 3
    assert q["field"] == field
    assert reason in q["reason"]
    assert query(ws, "SELECT record_id FROM leads ORDER BY line") == [("R000001",), ("R000003",)]


def test_duplicate_record_id_keeps_the_first(tmp_path):
    rows = [lead(1), lead(2), lead(3, record_id="R000001"), lead(4)]
    ws, report = ingest_rows(tmp_path, rows)
    (q,) = quarantine(ws)
    assert (q["line"], q["field"], q["record_id"]) == (4, "record_id", "R000001")
    assert "more than once" in q["reason"]
    assert query(ws, "SELECT line FROM leads WHERE record_id = 'R000001'") == [(2,)]
    assert report.files[0].accepted == 3


def test_malformed_optional_value_is_blanked_with_a_warning_not_quarantined(tmp_path):
    ws, report = ingest_rows(tmp_path, [lead(1, date_of_birth="1970-02-31", ip_address="999.1.1.1")])
    assert (report.files[0].accepted, report.files[0].warnings) == (1, 2)
    assert query(ws, "SELECT date_of_birth, ip_address FROM leads") == [(None, None)]
    warned = query(ws, "SELECT line, field FROM ingest_warnings ORDER BY field")
    assert warned == [(2, "date_of_birth"), (2, "ip_address")]


def test_wrong_column_count_is_quarantined(tmp_path):
    good = csv_text([lead(1), lead(3)]).splitlines()
    short = ",".join(["R000002", "T2", "2001-06-01"])
    long = csv_text([lead(4)]).splitlines()[1] + ",surplus"
    text = "\n".join([good[0], good[1], short, good[2], long]) + "\n"
    ws, report = ingest_rows(tmp_path, text)
    assert (report.files[0].accepted, report.files[0].quarantined) == (2, 2)
    reasons = {q["line"]: q["reason"] for q in quarantine(ws)}
    assert reasons == {3: f"row has 3 fields, the header has {len(LEADS_HEADER)}",
                       5: f"row has {len(LEADS_HEADER) + 1} fields, the header has {len(LEADS_HEADER)}"}
    kept = {q["line"]: json.loads(q["row_masked"]) for q in quarantine(ws)}
    assert kept[3] == {"record_id": "R000002", "transaction_id": "T2", "transaction_time": "2001-06-01"}
    assert kept[5]["(fields beyond the header)"] == ["surplus"], "nothing of a quarantined row is lost"
    assert kept[5]["card_number"] == card(4)[:6] + "******" + card(4)[-4:]


def test_undecodable_bytes_quarantined_naming_the_field(tmp_path):
    rows = csv_text([lead(1), lead(2, last_name="SMITHXX"), lead(3)]).encode()
    rows = rows.replace(b"SMITHXX", b"SMITH\xff\xfe")
    ws, report = ingest_rows(tmp_path, rows)
    (q,) = quarantine(ws)
    assert q["line"] == 3
    assert "last_name" in q["reason"] and "UTF-8" in q["reason"]
    assert report.files[0].accepted == 2


def test_latin1_file_quarantines_only_the_rows_with_accents(tmp_path):
    text = csv_text([lead(1), lead(2, town="Gu\u00e9rande"), lead(3)])
    ws, report = ingest_rows(tmp_path, text.encode("latin-1"))
    assert [(q["line"], "town" in q["reason"]) for q in quarantine(ws)] == [(3, True)]


def test_ten_megabyte_field_quarantined_rest_accepted(tmp_path):
    rows = [lead(1), lead(2, address_line2="x" * 10_000_000), lead(3)]
    ws, report = ingest_rows(tmp_path, rows)
    (q,) = quarantine(ws)
    assert q["line"] == 3
    assert "address_line2" in q["reason"] and "limit" in q["reason"]
    assert len(q["row_masked"]) < 100_000, "the quarantine keeps a readable row, not 10 MB"
    assert report.files[0].accepted == 2


def test_extra_columns_are_kept(tmp_path):
    header = [*LEADS_HEADER, "agency_note"]
    text = csv_text([lead(1, agency_note="seen twice")], header=header)
    ws, _ = ingest_rows(tmp_path, text)
    assert query(ws, "SELECT extra FROM leads") == [('{"agency_note": "seen twice"}',)]


def test_columns_in_any_order(tmp_path):
    header = list(reversed(LEADS_HEADER))
    ws, report = ingest_rows(tmp_path, csv_text([lead(1), lead(2)], header=header))
    assert report.files[0].accepted == 2
    assert query(ws, "SELECT record_id, amount FROM leads ORDER BY line") == [("R000001", 29.95), ("R000002", 29.95)]


def test_visits_rules(tmp_path):
    visits = [
        {"username": "user1", "visit_time": "2001-06-01T12:05:00", "ip_address": "10.0.0.1", "product": "SITE-01"},
        {"username": "", "visit_time": "2001-06-01T12:05:00", "ip_address": "", "product": ""},
        {"username": "user1", "visit_time": "soon", "ip_address": "", "product": ""},
        {"username": "user1", "visit_time": "2999-01-01T00:00:00", "ip_address": "", "product": ""},
        {"username": "user1", "visit_time": "2001-06-02T00:00:00", "ip_address": "not-an-ip", "product": ""},
    ]
    ws, report = ingest_rows(tmp_path, [lead(1)], visits=visits)
    v = report.files[1]
    assert v.file == "visits.csv"
    assert (v.rows_read, v.accepted, v.quarantined, v.warnings) == (5, 2, 3, 1)
    assert [(q["line"], q["field"]) for q in quarantine(ws)] == [
        (3, "username"), (4, "visit_time"), (5, "visit_time")]


def test_visits_header_missing_a_required_column_rejects_the_package(tmp_path):
    from ore.errors import PackageRejected

    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)], visits="user,visit_time\nu,2001-01-01\n")
    with pytest.raises(PackageRejected, match="visits.csv.*username"):
        ingest(ws, pkg)
    assert query(ws, "SELECT count(*) FROM leads") in ([], [(0,)])


def test_timezone_offsets_are_converted_to_utc(tmp_path):
    ws, _ = ingest_rows(tmp_path, [lead(1, transaction_time="2001-06-01T12:00:00+02:00")])
    (t,) = query(ws, "SELECT strftime(transaction_time, '%Y-%m-%d %H:%M') FROM leads")[0]
    assert t == "2001-06-01 10:00"


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_at_the_calendar_edges_are_quarantined_or_accepted_never_crash(tmp_path, time):
    ws, report = ingest_rows(tmp_path, [lead(1, transaction_time=time), lead(2)])
    assert report.files[0].rows_read == report.files[0].accepted + report.files[0].quarantined == 2


def test_card_number_typed_with_spaces_and_dashes_is_accepted(tmp_path):
    c = card(7)
    spaced = " ".join(c[i:i + 4] for i in range(0, 16, 4))
    dashed = "-".join(c[i:i + 4] for i in range(0, 16, 4))
    ws, report = ingest_rows(tmp_path, [lead(1, card_number=spaced), lead(2, card_number=dashed)])
    assert report.files[0].accepted == 2
    tokens = query(ws, "SELECT DISTINCT card_token, card_masked, card_last4 FROM leads")
    assert tokens == [(tokens[0][0], c[:6] + "******" + c[-4:], c[-4:])]
