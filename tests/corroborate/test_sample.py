"""The shared sample public-1: fraud precision and recall, actors surfaced, victims and subscribers.

Figures are computed from truth/records.csv the way eval/score.py does. The resolve stage is
stood in for by two simple rules (the stage relies only on the ``resolved_records`` contract):
each card is one person (pessimistic: a subscriber with two cards is two people), and, for
development only, the truth file's person (the identity each record names).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from ore.corroborate import corroborate
from ore.ingest import ingest, load_reference
from ore.workspace import Workspace

from shared_paths import SAMPLE  # noqa: E402

pytestmark = pytest.mark.skipif(not (SAMPLE / "package").exists(), reason="shared sample public-1 not present")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("ws"))
    report = ingest(ws, SAMPLE / "package")
    load_reference(ws, SAMPLE / "reference")
    truth = _csv(SAMPLE / "truth" / "records.csv")
    roles = {p["person"]: p["role"] for p in _csv(SAMPLE / "truth" / "persons.csv")}
    with ws.duckdb() as con:
        yield con, report.package_id, truth, roles


STAND_INS = {
    "by_card": "SELECT package_id, record_id, 'card-' || card_token AS person_id FROM leads WHERE package_id = $pkg",
    "by_truth_person": "SELECT l.package_id, l.record_id, t.person AS person_id FROM leads l "
    "JOIN truth t USING (record_id) WHERE l.package_id = $pkg",
}


@pytest.mark.parametrize("stand_in", sorted(STAND_INS))
def test_sample_targets(sample, stand_in):
    con, pkg, truth, roles = sample
    con.execute(
        "CREATE OR REPLACE TEMP TABLE truth AS SELECT record_id, person FROM read_csv(?, all_varchar = true)",
        [str(SAMPLE / "truth" / "records.csv")],
    )
    con.execute("CREATE OR REPLACE TABLE resolved_records AS " + STAND_INS[stand_in], {"pkg": pkg})
    summary = corroborate(con, pkg)
    out = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT e.record_id, e.fraud_suspected, e.subject_id, r.person_id FROM record_evidence e "
            "JOIN resolved_records r USING (package_id, record_id) WHERE e.package_id = ?",
            [pkg],
        ).fetchall()
    }
    assert summary.records == len(out) == sum(1 for t in truth if t["label"] != "malformed")

    tp = fp = fn = 0
    by_actor: dict[str, list[str]] = defaultdict(list)
    for t in truth:
        if t["label"] == "malformed" or t["record_id"] not in out:
            continue
        flagged, subject, _ = out[t["record_id"]]
        stolen = t["label"] == "stolen"
        tp += flagged and stolen
        fp += flagged and not stolen
        fn += (not flagged) and stolen
        if t["actor"]:
            by_actor[t["actor"]].append(subject or "")
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    counted = [s for s in by_actor.values() if len(s) >= 3]
    surfaced = sum(
        1 for s in counted if Counter(x for x in s if x) and Counter(x for x in s if x).most_common(1)[0][1] >= len(s) / 2
    )
    assert precision >= 0.97, (precision, tp, fp)
    assert recall >= 0.97, (recall, tp, fn)
    assert surfaced / len(counted) >= 0.90

    # person level, mapped as score.py maps them: each true person to the output person holding most records
    pe = dict(
        con.execute("SELECT person_id, likely_victim FROM person_evidence WHERE package_id = ?", [pkg]).fetchall()
    )
    recs: dict[str, list[str]] = defaultdict(list)
    for t in truth:
        if t["label"] == "malformed" or not t["person"]:
            continue
        if roles[t["person"]] == "subscriber" and t["label"] != "genuine":
            continue
        recs[t["person"]].append(out[t["record_id"]][2])
    victims = [p for p, r in roles.items() if r == "victim" and p in recs]
    subs = [p for p, r in roles.items() if r == "subscriber" and p in recs]
    mapped = {p: Counter(recs[p]).most_common(1)[0][0] for p in recs}
    victims_missed = sum(1 for p in victims if not pe[mapped[p]]) / len(victims)
    subs_dismissed = sum(1 for p in subs if pe[mapped[p]]) / len(subs)
    assert victims_missed <= 0.01
    assert subs_dismissed <= 0.03
