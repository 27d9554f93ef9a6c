"""The truth is scorable: a perfect triage output built from it scores perfectly with shared/eval/score.py."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthkit import read_csv

from ore.synth import SynthSummary

from shared_paths import SCORER as SCORE  # noqa: E402


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def perfect_output(scenario: SynthSummary, out: Path) -> None:
    out.mkdir()
    truth = read_csv(scenario.truth_dir / "records.csv")
    persons = read_csv(scenario.truth_dir / "persons.csv")
    actors = read_csv(scenario.truth_dir / "actors.csv")
    records = []
    quarantine = []
    seen: set[str] = set()
    for line, t in enumerate(truth, start=2):
        if t["label"] == "malformed":
            quarantine.append([str(line), t["record_id"], t["category"]])
        elif t["record_id"] not in seen:
            seen.add(t["record_id"])
            stolen = t["label"] == "stolen"
            records.append([t["record_id"], t["person"], t["actor"], "true" if stolen else "false", ""])
    _write(
        out / "records.csv",
        ["record_id", "person_id", "subject_id", "fraud_suspected", "fraud_indicators"],
        records,
    )
    rows = []
    for p in persons:
        priority = ("P1" if p["high_risk"] == "true" else "P3") if p["role"] == "subscriber" else "none"
        rows.append(
            [
                p["person"],
                "identified",
                priority,
                "true" if p["role"] == "victim" else "false",
                p["register_id"],
                p["force_code"],
                p["open_case"],
            ]
        )
    rows += [[a["actor"], "unidentified", "none", "false", "", "", ""] for a in actors]
    _write(
        out / "persons.csv",
        ["person_id", "kind", "priority", "likely_victim", "register_ref", "force_code", "open_case_refs"],
        rows,
    )
    _write(out / "quarantine.csv", ["line", "record_id", "reason"], quarantine)


@pytest.mark.skipif(not SCORE.is_file(), reason="shared/eval/score.py is not beside the repository")
def test_perfect_output_scores_perfectly(tmp_path: Path, scenario: SynthSummary) -> None:
    perfect_output(scenario, tmp_path / "out")
    result = subprocess.run(
        [sys.executable, str(SCORE), str(scenario.outdir), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=True,
    )
    metrics = json.loads(result.stdout)
    for name in (
        "valid_records_accepted",
        "malformed_quarantined",
        "resolution_pairwise_f1",
        "fraud_precision",
        "fraud_recall",
        "high_risk_in_P1",
        "victims_flagged",
        "P1_precision",
        "subscribers_actioned",
        "register_recall",
        "register_precision",
        "force_accuracy",
        "deconfliction_recall",
        "actors_surfaced",
    ):
        assert metrics[name] == 1.0, (name, metrics)
    assert metrics["victims_treated_as_suspects"] == 0.0 and metrics["adult_only_actioned"] == 0.0
