"""Invariants that must hold in any world, checked over tiny worlds of several seeds and difficulties."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from synthkit import read_csv

from ore.synth import generate
from ore.synth.cards import luhn_ok
from ore.synth.geography import load_geography


@pytest.mark.parametrize(
    ("seed", "difficulty", "people", "subscribers"),
    [
        (101, "easy", 600, 12),
        (202, "standard", 900, 40),
        (303, "hard", 700, 25),
        (404, "hard", 2500, 1),
    ],
)
def test_invariants(tmp_path: Path, seed: int, difficulty: str, people: int, subscribers: int) -> None:
    s = generate(tmp_path, people=people, subscribers=subscribers, seed=seed, difficulty=difficulty)
    manifest = json.loads((s.package_dir / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((s.package_dir / name).read_bytes()).hexdigest() == entry["sha256"]
        assert len(read_csv(s.package_dir / name)) == entry["rows"]
    leads = read_csv(s.package_dir / "leads.csv")
    truth = read_csv(s.truth_dir / "records.csv")
    persons = {p["person"]: p for p in read_csv(s.truth_dir / "persons.csv")}
    assert len(leads) == len(truth) == s.records
    assert sum(1 for p in persons.values() if p["role"] == "subscriber") == subscribers
    geo = load_geography()
    valid_ids: list[str] = []
    for r, t in zip(leads, truth, strict=True):
        assert r["record_id"] == t["record_id"]
        if t["label"] == "malformed":
            continue
        valid_ids.append(r["record_id"])
        assert luhn_ok(re.sub(r"[ -]", "", r["card_number"]))
        assert float(r["amount"]) > 0 and r["transaction_time"][:4] in {"1999", "2000", "2001", "2002"}
        assert geo.force_of(r["postcode"])  # every typed postcode routes somewhere
        assert t["person"] in persons
    assert len(set(valid_ids)) == len(valid_ids)  # valid rows never share a record id
    forces = {f for _, f, _ in geo.table}
    assert all(p["force_code"] in forces for p in persons.values())


def test_routing_reads_postcodes_in_canonical_form() -> None:
    """TN31 (Rye, Sussex) beats TN (Kent), but TN3 1AB typed without its space is still Kent's TN3."""
    geo = load_geography()
    assert geo.force_of("TN31 7AB") == "SUS"
    assert geo.force_of("tn317ab") == "SUS"
    assert geo.force_of("TN31AB") == "KNT"  # TN3 1AB
    assert geo.force_of("BA1 1AA") == "ASP" and geo.force_of("B1 1AA") == "WMP"  # B does not capture BA
    assert len(set(geo.force_names)) == 45
