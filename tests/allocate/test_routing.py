"""Routing a postcode to a force: longest prefix at part boundaries, NSPL first, never a guess."""

from pathlib import Path

import duckdb
import pytest

from ore.allocate import Router, load_nspl
from ore.allocate.postcodes import compact, pretty, routing_keys, split
from ore.errors import OreError

TABLE = {
    "B": ("WMP", "West Midlands Police"),
    "BA": ("ASP", "Avon and Somerset Police"),
    "CV1": ("WMP", "West Midlands Police"),
    "TN": ("KNT", "Kent Police"),
    "TN31": ("SXP", "Sussex Police"),
    "E": ("MPS", "Metropolitan Police Service"),
    "TN3 2": ("SXP", "Sussex Police"),
}


@pytest.fixture
def router() -> Router:
    return Router(TABLE)


def test_postcode_normal_forms() -> None:
    assert compact(" tn31 7xy ") == "TN317XY"
    assert split("tn317xy") == ("TN", "TN31", "7XY")
    assert pretty("ec1a1bb") == "EC1A 1BB"
    assert split("not a postcode") is None
    assert routing_keys("B13 6YF") == ["B136YF", "B13 6", "B13", "B"]


@pytest.mark.parametrize(
    ("postcode", "force"),
    [
        ("TN31 7XY", "SXP"),  # the longer prefix wins
        ("TN3 1AB", "KNT"),  # TN3 is not TN31
        ("TN3 2AB", "SXP"),  # a sector prefix
        ("B13 6YF", "WMP"),
        ("BA1 1AA", "ASP"),  # Bath is not Birmingham
        ("cv1 2ab", "WMP"),
        ("E2 8GX", "MPS"),
    ],
)
def test_longest_prefix_at_boundaries(router: Router, postcode: str, force: str) -> None:
    assert router.route(postcode).force_code == force


@pytest.mark.parametrize(
    ("postcode", "country", "why"),
    [
        ("CV10 7AB", "GB", "no routing prefix"),  # CV1 does not cover CV10
        ("ZZ1 1ZZ", "GB", "no routing prefix"),
        ("12345", "GB", "not a valid UK postcode"),
        ("", "GB", "no postcode"),
        ("TN31 7XY", "FR", "outside the UK"),
    ],
)
def test_unallocated_with_reason(router: Router, postcode: str, country: str, why: str) -> None:
    route = router.route(postcode, country)
    assert route.force_code is None
    assert why in route.rule


def test_nspl_is_more_specific_than_prefixes(tmp_path: Path) -> None:
    nspl = tmp_path / "NSPL.csv"
    nspl.write_text("pcd,pcds,dointr,pfa\nTN317XY,TN31 7XY,199801,E23000033\n", encoding="utf-8")
    con = duckdb.connect()
    con.execute("CREATE TABLE ref_postcode_forces (prefix VARCHAR, force_code VARCHAR, force_name VARCHAR)")
    con.executemany("INSERT INTO ref_postcode_forces VALUES (?, ?, ?)", [(k, *v) for k, v in TABLE.items()])
    assert load_nspl(con, nspl) == 1
    r = Router.from_tables(con, ["TN31 7XY", "TN31 7XZ"])
    assert r.route("tn31 7xy").force_code == "E23000033"
    assert r.route("TN31 7XZ").force_code == "SXP"


def test_nspl_without_its_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "lookup.csv"
    bad.write_text("postcode,force\nTN31 7XY,SXP\n", encoding="utf-8")
    with pytest.raises(OreError, match="lookup.csv: line 1: column"):
        load_nspl(duckdb.connect(), bad)
