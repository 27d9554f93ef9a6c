"""Scoring a triage output against a scenario's ground truth.

The same figures as the project's reference scorer: ingest (valid rows accepted,
malformed quarantined), resolution (pairwise F1 over genuine records), fraud
(record-level precision and recall), and person outcomes (high-risk people in P1,
victims not treated as suspects, adult-only buyers not actioned, register links,
force, deconfliction, fraud actors surfaced as subjects). Each true person is
judged by the output person that holds most of its records.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ore.errors import OreError

Row = dict[str, str]
ACTIONED = ("P1", "P2", "P3", "P4")


def _load(path: Path) -> list[Row]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise OreError(f"{path}: not found") from None


def _true(value: object) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "t", "y")


def _ratio(hit: int, total: int, empty: float | None = None) -> float | None:
    return round(hit / total, 4) if total else empty


def _pairs(groups: Iterable[Counter[str]]) -> int:
    return sum(k * (k - 1) // 2 for c in groups for k in c.values())


def evaluate(scenario: Path, out: Path) -> dict[str, Any]:
    scenario, out = Path(scenario), Path(out)
    truth = _load(scenario / "truth" / "records.csv")
    people = {r["person"]: r for r in _load(scenario / "truth" / "persons.csv")}
    records = {r["record_id"]: r for r in _load(out / "records.csv")}
    persons = {r["person_id"]: r for r in _load(out / "persons.csv")}
    quarantined = Counter(q.get("record_id", "") for q in _load(out / "quarantine.csv"))
    m: dict[str, Any] = {}

    valid = [t for t in truth if t["label"] != "malformed"]
    bad = [t for t in truth if t["label"] == "malformed"]
    m["valid_records_accepted"] = _ratio(sum(t["record_id"] in records for t in valid), len(valid))

    def caught(t: Row) -> bool:
        if t["category"] == "duplicate_record_id":
            return quarantined[t["record_id"]] >= 1
        if t["category"] == "no_record_id":
            return quarantined[""] >= 1
        return quarantined[t["record_id"]] >= 1 and t["record_id"] not in records

    m["malformed_quarantined"] = _ratio(sum(caught(t) for t in bad), len(bad))

    # resolution: pairs of genuine records of one true person that share an output person
    by_true: dict[str, Counter[str]] = defaultdict(Counter)
    by_pred: dict[str, Counter[str]] = defaultdict(Counter)
    for t in valid:
        if t["label"] == "genuine" and t["record_id"] in records:
            pid = records[t["record_id"]]["person_id"]
            by_true[t["person"]][pid] += 1
            by_pred[pid][t["person"]] += 1
    same = _pairs(by_true.values())
    true_pairs = sum(n * (n - 1) // 2 for n in (sum(c.values()) for c in by_true.values()))
    pred_pairs = sum(n * (n - 1) // 2 for n in (sum(c.values()) for c in by_pred.values()))
    precision = same / pred_pairs if pred_pairs else 1.0
    recall = same / true_pairs if true_pairs else 1.0
    m["resolution_pairwise_f1"] = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0

    flagged = [(t["label"] == "stolen", _true(records[t["record_id"]].get("fraud_suspected")))
               for t in valid if t["record_id"] in records]
    tp = sum(s and f for s, f in flagged)
    m["fraud_precision"] = _ratio(tp, sum(f for _, f in flagged), 0.0)
    m["fraud_recall"] = _ratio(tp, sum(s for s, _ in flagged), 1.0)

    # person outcomes: the output person holding most of a true person's own records
    held: dict[str, Counter[str]] = defaultdict(Counter)
    for t in valid:
        if t["person"] and t["record_id"] in records:
            if people[t["person"]]["role"] == "subscriber" and t["label"] != "genuine":
                continue
            pid = records[t["record_id"]]["person_id"]
            if pid:
                held[t["person"]][pid] += 1
    match: dict[str, Row | None] = {
        k: persons.get(held[k].most_common(1)[0][0]) if held[k] else None for k in people
    }

    def role(name: str) -> list[Row]:
        return [p for p in people.values() if p["role"] == name]

    subs, victims, adult = role("subscriber"), role("victim"), role("adult_only")
    high = [p for p in subs if _true(p["high_risk"])]

    def share(group: list[Row], test: Any, empty: float | None = None, floor: bool = False) -> float | None:
        hits = sum(1 for p in group if (o := match[p["person"]]) is not None and test(p, o))
        return _ratio(hits, max(1, len(group)) if floor else len(group), empty)

    m["high_risk_in_P1"] = share(high, lambda p, o: o["priority"] == "P1")
    m["victims_treated_as_suspects"] = share(
        victims, lambda p, o: o["priority"] != "none" or not _true(o.get("likely_victim")), floor=True)
    m["victims_flagged"] = share(victims, lambda p, o: _true(o.get("likely_victim")), floor=True)
    m["adult_only_actioned"] = share(adult, lambda p, o: o["priority"] != "none", floor=True)
    p1 = [pid for pid, p in persons.items() if p.get("priority") == "P1" and p.get("kind", "identified") == "identified"]
    p1_true = {o["person_id"] for p in high if (o := match[p["person"]]) is not None}
    m["P1_precision"] = _ratio(sum(pid in p1_true for pid in p1), len(p1), 0.0)
    m["subscribers_actioned"] = share(subs, lambda p, o: o["priority"] in ACTIONED)

    def refs(o: Row, key: str) -> list[str]:
        return (o.get(key) or "").split(";")

    registered = [p for p in subs if p["register_id"]]
    m["register_recall"] = share(registered, lambda p, o: p["register_id"] in refs(o, "register_ref"), floor=True)
    claims = [(p, o) for p in subs + victims + adult if (o := match[p["person"]]) is not None and o.get("register_ref")]
    m["register_precision"] = _ratio(sum(p["register_id"] in refs(o, "register_ref") for p, o in claims), len(claims), 0.0)
    m["force_accuracy"] = share(subs, lambda p, o: o.get("force_code") == p["force_code"])
    open_cases = [p for p in subs if p["open_case"]]
    m["deconfliction_recall"] = share(
        open_cases, lambda p, o: p["open_case"] in (o.get("open_case_refs") or ""), floor=True)

    # fraud actors: each with 3+ records should be one subject holding at least half of them
    by_actor: dict[str, list[str]] = defaultdict(list)
    for t in valid:
        if t["actor"] and t["record_id"] in records:
            by_actor[t["actor"]].append(records[t["record_id"]].get("subject_id", ""))
    counted = [subjects for subjects in by_actor.values() if len(subjects) >= 3]
    found = 0
    for subjects in counted:
        c = Counter(s for s in subjects if s)
        found += bool(c) and c.most_common(1)[0][1] >= 0.5 * len(subjects)
    m["actors_surfaced"] = _ratio(found, len(counted))
    return m
