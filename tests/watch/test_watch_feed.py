"""Reading a payment feed: every row keeps its physical line, a bad value is reported with its line and
field and costs nothing else, a broken row is reported and not screened, a file that is no feed is refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ore.errors import OreError
from ore.ingest.cards import CardError, card_digits
from ore.watch import feed as feeds

HEADER = "transaction_time,merchant,card_number,email,amount"


def read(path: Path) -> tuple[dict[int, dict], list[tuple[int, str, str]]]:
    f = feeds.open_feed(path)
    con = duckdb.connect()
    feeds.load(con, f)
    feeds.parse(con, f)
    feeds.keep_keys(con, f)
    feeds.check_cards(con)
    cur = con.execute("SELECT * FROM feed ORDER BY line")
    names = [d[0] for d in cur.description]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    return rows, feeds.problems(con)


def write(tmp_path: Path, text: str | bytes, name: str = "feed.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def test_lines_of_a_plain_file(tmp_path: Path) -> None:
    rows, problems = read(write(tmp_path, f"{HEADER}\n2004-01-01T10:00:00,A,,a@x.com,1\n2004-01-02,B,,b@x.com,2\n"))
    assert sorted(rows) == [2, 3] and rows[3]["merchant"] == "B" and problems == []
    assert rows[3]["transaction_time"] == datetime(2004, 1, 2)


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_lines_survive_quoted_line_breaks_blank_lines_and_crlf(tmp_path: Path, ending: str) -> None:
    lines = [HEADER, '2004-01-01,"TWO', 'LINES",,a@x.com,1', "", "2004-01-03,C,,c@x.com,3", "2004-01-04,D,,d@x.com,4"]
    rows, problems = read(write(tmp_path, ending.join(lines)))  # and no line break at the end
    assert sorted(rows) == [2, 5, 6] and rows[2]["merchant"] == f"TWO{ending}LINES" and rows[6]["merchant"] == "D"
    assert problems == []


def test_a_broken_row_is_reported_and_not_screened_the_rest_are(tmp_path: Path) -> None:
    text = (f"{HEADER}\n2004-01-01,A,,a@x.com,1\n2004-01-02,B,,b@x.com,2,EXTRA\n2004-01-03,\"C,,c@x.com,3\n"
            "2004-01-04,D,,d@x.com,4\n").encode() + b"2004-01-05,\xff\xfe,,e@x.com,5\n2004-01-06,F,,f@x.com,6\n"
    rows, problems = read(write(tmp_path, text))
    assert sorted(rows) == [2, 5, 7]
    broken = {line: msg for line, field, msg in problems if field == "row"}
    assert set(broken) == {3, 4, 6}
    assert "6 fields" in broken[3] and "quote" in broken[4] and "UTF-8" in broken[6]


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, b"\xef\xbb\xbf" + f"{HEADER}\n2004-01-01,A,,a@x.com,1\n".encode()))
    assert rows[2]["transaction_time"] == datetime(2004, 1, 1)


def test_each_bad_value_is_named_by_line_and_field_and_blanked(tmp_path: Path) -> None:
    text = (f"{HEADER},ip_address,card_token\n"
            "2004-01-01T10:00:00+01:00,A,,A@X.COM,1.5,10.0.0.1,\n"
            "soon,B,4111 1111 1111 1112,b@x.com,lots,10.0.0.300x,\n"
            "2999-01-01,C,4111-1111,c@x.com,nan,,\n"
            ",D,4111x111111111111,d@x.com,,,\n")
    path = write(tmp_path, text)
    with pytest.raises(OreError, match="card_number or card_token, not both"):
        read(path)
    path = write(tmp_path, text.replace(",card_token\n", "\n").replace(",\n", "\n"))
    rows, problems = read(path)
    assert rows[2]["transaction_time"] == datetime(2004, 1, 1, 9) and rows[2]["email_n"] == "a@x.com"
    got = {(line, field): msg for line, field, msg in problems}

    def ingest_says(typed: str) -> str:
        with pytest.raises(CardError) as e:
            card_digits(typed)
        return str(e.value)

    assert got == {
        (3, "transaction_time"): "transaction_time 'soon' is not an ISO 8601 date-time",
        (3, "card_number"): ingest_says("4111 1111 1111 1112"),
        (3, "amount"): "amount 'lots' is not a number",
        (3, "ip_address"): "ip_address '10.0.0.300x' is not an IP address",
        (4, "transaction_time"): "transaction_time 2999-01-01T00:00:00 is in the future",
        (4, "card_number"): ingest_says("4111-1111"),
        (4, "amount"): "amount is not a finite number",
        (5, "transaction_time"): "transaction_time is missing",
        (5, "card_number"): ingest_says("4111x111111111111"),
    }
    assert not any("4111" in msg for msg in got.values())  # no card number in any message
    # the row is still screened on what remains
    assert rows[3]["email_n"] == "b@x.com" and rows[3]["transaction_time"] is None and rows[3]["amount"] is None


@pytest.mark.parametrize(("text", "message"), [
    ("merchant,email\nA,a@x.com\n", "line 1: the required column transaction_time is missing"),
    ("transaction_time,amount\n2004-01-01,1\n", "no column to screen on"),
    ("transaction_time,email,email\n2004-01-01,a,b\n", "appears twice"),
    ("", "the file is empty"),
])
def test_a_file_that_is_no_feed_is_refused_whole(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OreError, match=message):
        feeds.open_feed(write(tmp_path, text))


def test_a_utf16_export_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes("transaction_time,email\n2004-01-01,a@x.com\n".encode("utf-16"))  # with its byte-order mark
    with pytest.raises(OreError, match=r"feed.csv: line 1: the file is UTF-16.*save it as \"CSV UTF-8\""):
        feeds.open_feed(path)


def test_other_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OreError, match="a .csv or .parquet file"):
        feeds.open_feed(write(tmp_path, "x", "feed.xlsx"))
    with pytest.raises(OreError, match="not a readable Parquet file"):
        feeds.open_feed(write(tmp_path, "not parquet", "feed.parquet"))


def test_parquet_keeps_its_types_and_numbers_rows(tmp_path: Path) -> None:
    table = pa.table({"transaction_time": pa.array([datetime(2004, 1, 1, 10), None], pa.timestamp("us")),
                      "amount": pa.array([1.5, float("inf")]), "email": ["a@x.com", "b@x.com"],
                      "card_token": ["A" * 64, "xyz"]})
    pq.write_table(table, tmp_path / "f.parquet")
    rows, problems = read(tmp_path / "f.parquet")
    assert rows[1]["transaction_time"] == datetime(2004, 1, 1, 10) and rows[1]["amount"] == 1.5
    assert rows[1]["card_token"] == "a" * 64 and rows[2]["card_token"] is None
    assert {(line, f) for line, f, _ in problems} == {(2, "transaction_time"), (2, "amount"), (2, "card_token")}


def test_the_documented_format_is_the_one_read() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "watch.md").read_text(encoding="utf-8")
    for c in feeds.COLUMNS:
        assert f"| `{c.name}` |" in doc, f"docs/watch.md does not describe the feed column {c.name}"
