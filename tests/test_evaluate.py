"""ore evaluate agrees with the project's reference scorer, metric for metric."""

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ore.evaluate import evaluate

from shared_paths import SAMPLE, SCORER


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def imperfect_output(scenario: Path, out: Path, seed: int) -> None:
    """An output built from truth with deliberate mistakes of every kind the metrics measure."""
    rnd = random.Random(seed)
    truth = list(csv.DictReader((scenario / "truth/records.csv").open(encoding="utf-8")))
    people = {p["person"]: p for p in csv.DictReader((scenario / "truth/persons.csv").open(encoding="utf-8"))}
    out.mkdir(parents=True, exist_ok=True)
    records, quarantine, persons = [], [], {}
    for t in truth:
        if t["label"] == "malformed" and rnd.random() < 0.8:
            quarantine.append({"line": 2, "record_id": t["record_id"] if rnd.random() < 0.9 else "", "reason": "x"})
            continue
        pid = t["person"] or "P-unknown"
        if rnd.random() < 0.03:
            pid = pid + "-split"
        stolen = t["label"] == "stolen"
        flagged = stolen if rnd.random() > 0.05 else not stolen
        subject = t["actor"] if t["actor"] and rnd.random() < 0.7 else ""
        records.append({"record_id": t["record_id"], "person_id": pid, "subject_id": subject,
                        "fraud_suspected": "true" if flagged else "false", "fraud_indicators": ""})
        truth_p = people.get(t["person"], {})
        role = truth_p.get("role", "")
        band = rnd.choice(["P1", "P2", "P3", "P4", "none"])
        if role == "subscriber" and truth_p.get("high_risk") == "true" and rnd.random() < 0.8:
            band = "P1"
        persons[pid] = {
            "person_id": pid, "kind": "identified", "display_name": "", "date_of_birth": "", "postcode": "",
            "force_code": truth_p.get("force_code", "") if rnd.random() < 0.9 else "XX",
            "evidence_grade": "B", "likely_victim": "true" if role == "victim" and rnd.random() < 0.9 else "false",
            "priority": band, "priority_reasons": "",
            "register_ref": truth_p.get("register_id", "") if rnd.random() < 0.9 else "REGX",
            "conviction_refs": "", "employment_refs": "", "children_in_household": "",
            "open_case_refs": truth_p.get("open_case", "") if rnd.random() < 0.9 else "",
            "record_count": 1,
        }
    _write(out / "records.csv", records)
    _write(out / "persons.csv", list(persons.values()))
    _write(out / "quarantine.csv", quarantine or [{"line": "", "record_id": "", "reason": ""}])


@pytest.mark.skipif(not (SCORER.exists() and SAMPLE.exists()), reason="shared/ (reference scorer and sample) not beside the repo")
@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_the_reference_scorer(tmp_path: Path, seed: int) -> None:
    imperfect_output(SAMPLE, tmp_path, seed)
    ours = evaluate(SAMPLE, tmp_path)
    ref = json.loads(subprocess.run([sys.executable, str(SCORER), str(SAMPLE), str(tmp_path)],
                                    capture_output=True, text=True, check=True).stdout)
    assert ours == ref
    assert 0 < ours["resolution_pairwise_f1"] < 1  # the mistakes were seen


def test_a_perfect_output_scores_perfectly(tmp_path: Path) -> None:
    scen = tmp_path / "scen"
    (scen / "truth").mkdir(parents=True)
    _write(scen / "truth/records.csv", [
        {"record_id": "R1", "label": "genuine", "person": "A", "actor": "", "category": "abuse"},
        {"record_id": "R2", "label": "genuine", "person": "A", "actor": "", "category": "abuse"},
        {"record_id": "R3", "label": "stolen", "person": "V", "actor": "X", "category": "abuse"},
        {"record_id": "R4", "label": "stolen", "person": "V", "actor": "X", "category": "abuse"},
        {"record_id": "R5", "label": "stolen", "person": "V", "actor": "X", "category": "abuse"},
        {"record_id": "R6", "label": "malformed", "person": "", "actor": "", "category": "bad_luhn"},
    ])
    _write(scen / "truth/persons.csv", [
        {"person": "A", "role": "subscriber", "high_risk": "true", "register_id": "REG1", "contact_offence": "false",
         "works_with_children": "false", "children_in_household": "0", "force_code": "KNT", "open_case": "OC1"},
        {"person": "V", "role": "victim", "high_risk": "false", "register_id": "", "contact_offence": "false",
         "works_with_children": "false", "children_in_household": "0", "force_code": "MPS", "open_case": ""},
    ])
    out = tmp_path / "out"
    out.mkdir()
    _write(out / "records.csv", [
        {"record_id": r, "person_id": p, "subject_id": s, "fraud_suspected": f, "fraud_indicators": ""}
        for r, p, s, f in [("R1", "p1", "", "false"), ("R2", "p1", "", "false"), ("R3", "p2", "s1", "true"),
                           ("R4", "p2", "s1", "true"), ("R5", "p2", "s1", "true")]
    ])
    base = {"kind": "identified", "display_name": "", "date_of_birth": "", "postcode": "", "evidence_grade": "A",
            "priority_reasons": "", "conviction_refs": "", "employment_refs": "", "children_in_household": "",
            "record_count": 1}
    _write(out / "persons.csv", [
        {**base, "person_id": "p1", "force_code": "KNT", "likely_victim": "false", "priority": "P1",
         "register_ref": "REG1", "open_case_refs": "OC1"},
        {**base, "person_id": "p2", "force_code": "MPS", "likely_victim": "true", "priority": "none",
         "register_ref": "", "open_case_refs": ""},
    ])
    _write(out / "quarantine.csv", [{"line": 7, "record_id": "R6", "reason": "card_number fails Luhn check"}])
    m = evaluate(scen, out)
    assert m["valid_records_accepted"] == m["malformed_quarantined"] == m["resolution_pairwise_f1"] == 1.0
    assert m["fraud_precision"] == m["fraud_recall"] == m["high_risk_in_P1"] == m["P1_precision"] == 1.0
    assert m["victims_treated_as_suspects"] == 0.0 and m["actors_surfaced"] == 1.0
    assert m["register_recall"] == m["register_precision"] == m["deconfliction_recall"] == 1.0
