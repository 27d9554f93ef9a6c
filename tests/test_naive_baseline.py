"""The naive exact-match baseline of ``make bench`` (bench/naive.py) on the shared sample.

What it must be to be a fair baseline: every cardholder whose card bought abuse access is a
suspect (so card-fraud victims are treated as suspects), persons and holdings links are exact
name and postcode (normalised for case and spaces), and its output is the triage output format
the shared scorer reads. Behaviour only: its speed is measured by ``make bench``.
"""

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from shared_paths import SAMPLE, SCORER

NAIVE = Path(__file__).resolve().parents[1] / "bench" / "naive.py"

pytestmark = pytest.mark.skipif(not (SCORER.exists() and SAMPLE.exists()),
                                reason="shared/ (reference scorer and sample) not beside the repo")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _leads() -> dict[str, dict[str, str]]:
    """The sample's lead rows by record id; of a duplicated id, the first (the later copy is quarantined)."""
    leads: dict[str, dict[str, str]] = {}
    for r in _rows(SAMPLE / "package" / "leads.csv"):
        leads.setdefault(r["record_id"], r)
    return leads


def _key(first: str, last: str, cardholder: str, postcode: str) -> tuple[str, str]:
    name = " ".join(f"{first} {last}".upper().split()) or " ".join(cardholder.upper().split())
    return name, "".join(postcode.upper().split())


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("naive")
    subprocess.run([sys.executable, str(NAIVE), str(SAMPLE / "package"), "--reference", str(SAMPLE / "reference"),
                    "--out", str(out)], check=True, capture_output=True)
    return out


def test_the_shared_scorer_scores_it_and_victims_are_suspects(out: Path) -> None:
    scores = json.loads(subprocess.run([sys.executable, str(SCORER), str(SAMPLE), str(out)], capture_output=True,
                                       text=True, check=True).stdout)
    assert scores["valid_records_accepted"] == 1.0
    assert scores["malformed_quarantined"] == 1.0
    # no corroboration: no record suspected, no victim recognised, no fraudster surfaced
    assert scores["fraud_recall"] == 0.0 and scores["victims_flagged"] == 0.0 and scores["actors_surfaced"] == 0.0
    assert scores["victims_treated_as_suspects"] == 1.0
    assert scores["subscribers_actioned"] > 0.99
    assert 0.3 < scores["resolution_pairwise_f1"] < 0.95  # exact names split typos and nicknames


def test_every_cardholder_of_an_abuse_purchase_is_a_suspect_and_no_one_else(out: Path) -> None:
    leads = _leads()
    abuse: dict[str, bool] = defaultdict(bool)
    for r in _rows(out / "records.csv"):
        assert r["fraud_suspected"] == "false" and r["subject_id"] == ""
        abuse[r["person_id"]] |= leads[r["record_id"]]["product_category"] == "abuse"
    persons = _rows(out / "persons.csv")
    assert {p["person_id"] for p in persons} == set(abuse)
    for p in persons:
        assert p["likely_victim"] == "false"
        assert (p["priority"] != "none") == abuse[p["person_id"]], p


def test_a_person_is_one_exact_name_and_postcode(out: Path) -> None:
    leads = _leads()
    keys: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in _rows(out / "records.csv"):
        lead = leads[r["record_id"]]
        keys[r["person_id"]].add(_key(lead["first_name"], lead["last_name"], lead["cardholder_name"],
                                      lead["postcode"]))
    assert all(len(k) == 1 for k in keys.values())  # one key per person ...
    assert len({next(iter(k)) for k in keys.values()}) == len(keys)  # ... and one person per key


def test_register_links_are_exact_name_and_postcode(out: Path) -> None:
    leads = _leads()
    key_of: dict[str, tuple[str, str]] = {}
    for r in _rows(out / "records.csv"):
        lead = leads[r["record_id"]]
        key_of[r["person_id"]] = _key(lead["first_name"], lead["last_name"], lead["cardholder_name"], lead["postcode"])
    register = {r["register_id"]: _key(r["first_name"], r["last_name"], "", r["postcode"])
                for r in _rows(SAMPLE / "reference" / "register.csv")}
    linked = 0
    for p in _rows(out / "persons.csv"):
        expected = sorted(rid for rid, k in register.items() if k == key_of[p["person_id"]])
        assert sorted(filter(None, p["register_ref"].split(";"))) == expected, p
        linked += bool(expected)
        if expected and p["priority"] != "none":
            assert p["priority"] == "P1" and "registered_offender" in p["priority_reasons"]
    assert linked > 0
