"""Properties: whatever bytes arrive, ingest never crashes and never loses a row.

A package-level fault is a clean ``OreError`` (``PackageRejected``); anything else
is a bug. When a package goes in, rows read = accepted + quarantined, and the
tables hold exactly those rows. Examples are bounded to keep the run short.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadpkg import LEADS_HEADER, card, lead, open_ws, query, write_package
from ore.errors import OreError
from ore.ingest import ingest
from ore.ingest.csvrows import read_csv

FEW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CARDS = [card(n) for n in range(1, 6)]
HEADER = ",".join(LEADS_HEADER).encode()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return open_ws(tmp_path_factory.mktemp("props") / "ws")


_ids = iter(range(10**9))


def ingest_or_reject(ws, leads) -> None:
    """Ingest ``leads`` as a new package and check its accounting, or accept a clean rejection."""
    package_id = f"P-{next(_ids)}"
    with tempfile.TemporaryDirectory() as d:
        pkg = write_package(Path(d) / "pkg", leads, package_id=package_id)
        try:
            report = ingest(ws, pkg)
        except OreError as e:
            assert str(e), "a rejection says why"
            assert query(ws, "SELECT count(*) FROM leads WHERE package_id = ?", [package_id]) in ([], [(0,)])
            return
    (f,) = report.files
    assert f.rows_read == f.accepted + f.quarantined
    stored = query(ws, "SELECT (SELECT count(*) FROM leads WHERE package_id = $1), "
                       "(SELECT count(*) FROM quarantine WHERE package_id = $1)", [package_id])
    assert stored == [(f.accepted, f.quarantined)]
    lines = [ln for (ln,) in query(ws, "SELECT line FROM leads WHERE package_id = $1 UNION ALL "
                                       "SELECT line FROM quarantine WHERE package_id = $1 ORDER BY 1", [package_id])]
    assert len(set(lines)) == len(lines), "one row, one line"
    assert all(ln >= 2 for ln in lines)
    text = "\n".join(v for (v,) in query(
        ws, "SELECT concat_ws('|', record_id, reason, row_masked) FROM quarantine WHERE package_id = ?",
        [package_id]))
    digits = re.sub(r"[ \-]", "", text)
    for c in CARDS:
        assert c not in digits, "no clear card number in the quarantine"


# --- arbitrary bytes ---------------------------------------------------------------------------------


@FEW
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_as_leads(ws, data):
    ingest_or_reject(ws, data)


@FEW
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_after_a_good_header(ws, data):
    ingest_or_reject(ws, HEADER + b"\n" + data)


@MANY
@given(data=st.binary(max_size=3000))
def test_reader_on_arbitrary_bytes(data):
    """The reader alone, many more examples: rows come back in line order, or the file is rejected."""
    try:
        header, rows = read_csv(io.BytesIO(data), "leads.csv", 100)
        rows = list(rows)
    except OreError:
        return
    physical = len(re.findall(rb"\r\n|\r|\n", data)) + 1
    lines = [r.line for r in rows]
    assert lines == sorted(set(lines))
    assert all(2 <= ln <= physical for ln in lines)
    for r in rows:
        assert r.problems or len(r.values) == len(header)


# --- CSV-shaped rows -----------------------------------------------------------------------------------

cells = st.one_of(
    st.sampled_from(["", " ", "R1", "2001-06-01T12:00:00", "2999-01-01", "29.95", "-1", "NaN", "abuse",
                     "approved", "GB", "06/03", "10.0.0.1", *CARDS, CARDS[0][:8] + " " + CARDS[0][8:],
                     "4111111111111112", '"', '""', ",", "\n", "\r", "\r\n", "\ufeff", "\x00"]),
    st.text(max_size=30),
)


@st.composite
def csv_shaped(draw):
    width = len(LEADS_HEADER)
    rows = []
    for i in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):  # mostly a valid row, a few cells changed
            row = lead(i + 1, card_number=draw(st.sampled_from(CARDS)))
            values = [row[h] for h in LEADS_HEADER]
            for _ in range(draw(st.integers(0, 3))):
                values[draw(st.integers(0, width - 1))] = draw(cells)
        else:
            values = draw(st.lists(cells, min_size=0, max_size=width + 3))
        rows.append(values)
    if draw(st.booleans()):  # well quoted
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
        w.writerow(LEADS_HEADER)
        w.writerows(rows)
        return buf.getvalue().encode("utf-8")
    # joined without quoting: commas, quotes and newlines in values break the row structure
    lines = [",".join(LEADS_HEADER)] + [",".join(r) for r in rows]
    return "\n".join(lines).encode("utf-8")


@FEW
@given(data=csv_shaped())
def test_csv_shaped_rows(ws, data):
    ingest_or_reject(ws, data)


free_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Nd")), max_size=20)


def rfc4180(values: list[str], newline: str) -> str:
    """One CSV record quoted as RFC 4180 says (Python's writer leaves a lone \\n unquoted when the
    line terminator is \\r, which makes a broken file)."""
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\r\n') else v
    return ",".join(cell(v) for v in values) + newline


@FEW
@given(names=st.lists(st.tuples(free_text, free_text), min_size=1, max_size=6),
       newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_well_quoted_text_round_trips_with_its_line_numbers(ws, names, newline):
    """Any text in a free-text column, quoted as RFC 4180 says, comes back as sent, on the right line."""
    rows = [lead(i + 1, first_name=a, address_line1=b) for i, (a, b) in enumerate(names)]
    text = rfc4180(LEADS_HEADER, newline)
    expected = []
    line = 2
    for r in rows:
        written = rfc4180([r[h] for h in LEADS_HEADER], newline)
        text += written
        expected.append((line, r["first_name"].strip() or None, r["address_line1"].strip() or None))
        line += len(re.findall(r"\r\n|\r|\n", written))
    package_id = f"P-{next(_ids)}"
    with tempfile.TemporaryDirectory() as d:
        report = ingest(ws, write_package(Path(d) / "pkg", text, package_id=package_id))
    assert report.files[0].quarantined == 0
    got = query(ws, "SELECT line, first_name, address_line1 FROM leads WHERE package_id = ? ORDER BY line",
                [package_id])
    assert got == expected
