"""Choosing an engine, and the one rule for a pair exactly at the threshold (both engines)."""

from __future__ import annotations

import duckdb
import pytest

from ore.errors import OreError
from ore.resolve import ModelSpec, make_engine, standardise, train
from ore.resolve.model import Table


def test_an_unknown_engine_is_refused_by_name(tmp_path) -> None:
    with pytest.raises(OreError, match="unknown engine 'flink'.*duckdb, spark"):
        make_engine("flink", tmp_path)


def test_a_pair_exactly_at_the_threshold_is_a_match() -> None:
    """Scored pairs come back to DuckDB and are clustered there whichever engine scored them, so the
    rule is one: at or above the threshold is the same person; below it is not."""
    con = duckdb.connect()
    con.execute("""CREATE TABLE raw AS SELECT * FROM (VALUES
        ('a', 'ANN LEE', 'LS1 4AB'), ('b', 'ANN LEE', 'LS1 4AB'), ('c', 'BOB HART', 'N8 0WL'),
        ('d', 'BOB HART', 'N8 0WL'), ('e', 'CY MOSS', 'E2 8GX')) t(unique_id, name, pc)""")
    standardise(con, "raw", "std", full_name="name", postcode="pc")
    spec = ModelSpec(name="tie", link_type="dedupe_only", comparisons=[{"kind": "first_name", "tf": False}],
                     blocking=[["last_name"]], training=[], threshold=0.9, u_max_pairs=100)
    model = train(spec, con, ["std"])
    con.execute("""CREATE TABLE pairs AS SELECT * FROM (VALUES
        ('a', 'b', 0.9), ('c', 'd', 0.8999999), ('a', 'e', 0.0)) t(unique_id_l, unique_id_r, match_probability)""")
    clusters = dict(con.execute(f"SELECT unique_id, cluster_id FROM {model.cluster(Table('pairs')).physical_name}")
                    .fetchall())
    assert clusters["a"] == clusters["b"]
    assert clusters["c"] != clusters["d"]
    assert len(set(clusters.values())) == 4
