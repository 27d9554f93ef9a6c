"""The scenario's files: formats, integrity, and truth consistent with what was written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from synthkit import SMALL, read_csv

from ore.synth import SynthSummary, generate
from ore.synth.cards import luhn_ok

LEAD_HEADER = (
    "record_id,transaction_id,transaction_time,merchant,product,product_category,amount,currency,status,"
    "card_number,card_expiry,cardholder_name,first_name,last_name,date_of_birth,email,username,"
    "address_line1,address_line2,town,postcode,country,ip_address,ip_country,phone"
)
REFERENCE_HEADERS = {
    "register.csv": "register_id,first_name,last_name,date_of_birth,address_line1,town,postcode,"
    "registered_on,offence_type,risk_level",
    "convictions.csv": "conviction_ref,first_name,last_name,date_of_birth,postcode,offence_date,"
    "offence_category,disposal",
    "employment.csv": "employment_ref,first_name,last_name,date_of_birth,postcode,employer,occupation,sector,"
    "works_with_children",
    "households.csv": "address_line1,postcode,children_under_18",
    "card_alerts.csv": "card_number,reported_on,alert_type",
    "open_cases.csv": "case_ref,force_code,first_name,last_name,date_of_birth,postcode,opened_on,subject",
    "postcode_forces.csv": "prefix,force_code,force_name",
}
TRUTH_HEADERS = {
    "records.csv": "record_id,label,person,actor,category",
    "persons.csv": "person,role,high_risk,register_id,contact_offence,works_with_children,"
    "children_in_household,force_code,open_case",
    "actors.csv": "actor,style,country,emails",
}
MALFORMED = {
    "no_record_id",
    "duplicate_record_id",
    "bad_luhn",
    "no_card",
    "bad_time",
    "future_time",
    "bad_amount",
}
TACTICS = {"carder", "fake_name", "merchant_fraud", "identity_theft", "proxy"}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path, standard: SynthSummary) -> None:
    again = generate(tmp_path / "again", seed=7, **SMALL)
    assert files(again.outdir) == files(standard.outdir)


def test_same_bytes_in_another_process(tmp_path: Path, standard: SynthSummary) -> None:
    """No dependence on string hashing or other per-process state."""
    code = (
        "import sys; from ore.synth import generate; "
        f"generate(sys.argv[1], seed=7, people={SMALL['people']}, subscribers={SMALL['subscribers']})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "p")], check=True, env=env)
    assert files(tmp_path / "p") == files(standard.outdir)


def test_different_seed_differs(tmp_path: Path, standard: SynthSummary) -> None:
    other = generate(tmp_path / "other", seed=8, **SMALL)
    assert (other.package_dir / "leads.csv").read_bytes() != (standard.package_dir / "leads.csv").read_bytes()
    assert other.package_id != standard.package_id


def test_headers_are_the_spec_columns(scenario: SynthSummary) -> None:
    first = lambda p: p.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first(scenario.package_dir / "leads.csv") == LEAD_HEADER
    assert first(scenario.package_dir / "visits.csv") == "username,visit_time,ip_address,product"
    for name, header in REFERENCE_HEADERS.items():
        assert first(scenario.reference_dir / name) == header, name
    for name, header in TRUTH_HEADERS.items():
        assert first(scenario.truth_dir / name) == header, name


def test_manifest_hashes_and_rows(scenario: SynthSummary) -> None:
    manifest = json.loads((scenario.package_dir / "manifest.json").read_text())
    assert manifest["format"] == "ore-lead-package" and manifest["version"] == 1
    assert manifest["package_id"] == scenario.package_id
    assert set(manifest["files"]) == {"leads.csv", "visits.csv"}
    for name, entry in manifest["files"].items():
        data = (scenario.package_dir / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(read_csv(scenario.package_dir / name)) == entry["rows"]


def test_every_lead_row_has_its_truth_row(scenario: SynthSummary) -> None:
    leads = read_csv(scenario.package_dir / "leads.csv")
    truth = read_csv(scenario.truth_dir / "records.csv")
    assert [r["record_id"] for r in leads] == [t["record_id"] for t in truth]
    assert scenario.records == len(leads)
    persons = {p["person"] for p in read_csv(scenario.truth_dir / "persons.csv")}
    actors = {a["actor"] for a in read_csv(scenario.truth_dir / "actors.csv")}
    for t in truth:
        if t["label"] == "malformed":
            assert t["person"] == "" and t["category"] in MALFORMED
        else:
            assert t["person"] in persons and t["category"] in ("abuse", "adult")
            assert (t["actor"] in actors) if t["label"] == "stolen" else t["actor"] == ""


def test_accounts_and_mailboxes_have_one_holder(scenario: SynthSummary) -> None:
    """A site account (which joins the access log) and a mailbox belong to one person or one actor."""
    truth = read_csv(scenario.truth_dir / "records.csv")
    holders: dict[str, set[str]] = defaultdict(set)
    for t, r in zip(truth, read_csv(scenario.package_dir / "leads.csv"), strict=True):
        if t["label"] != "malformed":
            who = t["actor"] or t["person"]
            holders["u:" + r["username"].lower()].add(who)
            holders["m:" + r["email"].lower()].add(who)
    assert all(len(v) == 1 for v in holders.values())


def test_labels_roles_and_flags_present(scenario: SynthSummary) -> None:
    truth = read_csv(scenario.truth_dir / "records.csv")
    persons = read_csv(scenario.truth_dir / "persons.csv")
    assert {t["label"] for t in truth} == {"genuine", "stolen", "malformed"}
    assert {p["role"] for p in persons} == {"subscriber", "victim", "adult_only"}
    subs = [p for p in persons if p["role"] == "subscriber"]
    assert {p["high_risk"] for p in subs} == {"true", "false"}
    assert all(p["high_risk"] == "false" for p in persons if p["role"] != "subscriber")
    for p in persons:  # high_risk is exactly the definition in the sample's README
        flagged = (
            bool(p["register_id"])
            or p["contact_offence"] == "true"
            or p["works_with_children"] == "true"
            or int(p["children_in_household"]) > 0
        )
        assert (p["high_risk"] == "true") == (p["role"] == "subscriber" and flagged)
    for flag in ("contact_offence", "works_with_children"):
        assert any(p[flag] == "true" for p in subs), flag
    assert any(p["register_id"] for p in subs) and any(p["open_case"] for p in subs)


def test_every_fraud_tactic_present(scenario: SynthSummary) -> None:
    actors = read_csv(scenario.truth_dir / "actors.csv")
    assert {a["style"] for a in actors} == TACTICS
    truth = read_csv(scenario.truth_dir / "records.csv")
    leads = read_csv(scenario.package_dir / "leads.csv")
    by_actor: dict[str, list[dict[str, str]]] = defaultdict(list)
    for t, r in zip(truth, leads, strict=True):
        if t["actor"]:
            by_actor[t["actor"]].append(r)
    visited = {v["username"] for v in read_csv(scenario.package_dir / "visits.csv")}
    style = {a["actor"]: a["style"] for a in actors}
    for aid, rows in by_actor.items():
        s = style[aid]
        if s == "carder":
            assert len({r["email"] for r in rows}) == 1 and len({r["card_number"] for r in rows}) > 1
        if s == "merchant_fraud":
            assert not {r["username"] for r in rows} & visited
            assert len({r["transaction_time"][:10] for r in rows}) <= 3 * 2  # a few bursts of hours
        if s == "identity_theft":
            cards = {re.sub(r"\D", "", r["card_number"]) for r in rows}
            assert len({r["email"] for r in rows}) == len(cards)  # a fresh email per card
        if s == "proxy":
            assert {r["ip_country"] for r in rows} <= {"GB", ""}
        if s == "fake_name":
            assert any(r["cardholder_name"] != f"{r['first_name']} {r['last_name']}".upper() for r in rows)
    statuses = Counter(r["status"] for rows in by_actor.values() for r in rows)
    assert statuses["declined"] and statuses["chargeback"] and statuses["approved"]


def test_malformed_rows_of_every_category(scenario: SynthSummary) -> None:
    truth = read_csv(scenario.truth_dir / "records.csv")
    leads = read_csv(scenario.package_dir / "leads.csv")
    cats = Counter(t["category"] for t in truth if t["label"] == "malformed")
    assert set(cats) == MALFORMED
    for t, r in zip(truth, leads, strict=True):
        digits = re.sub(r"[ -]", "", r["card_number"])
        if t["label"] != "malformed":
            assert digits.isdigit() and luhn_ok(digits), r
        elif t["category"] == "bad_luhn":
            assert not luhn_ok(digits)
        elif t["category"] == "no_card":
            assert r["card_number"] == ""
        elif t["category"] == "no_record_id":
            assert r["record_id"] == ""


def _force_by_table(table: list[dict[str, str]], postcode: str) -> str:
    """An independent reading of the spec: longest prefix of the canonical postcode."""
    s = re.sub(r"\s+", "", postcode.upper())
    canon = f"{s[:-3]} {s[-3:]}"
    best = max(
        (p for p in table if canon.startswith(p["prefix"])), key=lambda p: len(p["prefix"]), default=None
    )
    return best["force_code"] if best else ""


def test_persons_force_agrees_with_postcode_table(scenario: SynthSummary) -> None:
    table = read_csv(scenario.reference_dir / "postcode_forces.csv")
    assert len({p["force_code"] for p in table}) >= 43
    persons = {p["person"]: p for p in read_csv(scenario.truth_dir / "persons.csv")}
    truth = read_csv(scenario.truth_dir / "records.csv")
    leads = read_csv(scenario.package_dir / "leads.csv")
    latest: dict[str, dict[str, str]] = {}
    for t, r in zip(truth, leads, strict=True):  # file order is time order: the last genuine row is current
        if t["label"] == "genuine":
            latest[t["person"]] = r
    assert latest
    for person, row in latest.items():
        assert _force_by_table(table, row["postcode"]) == persons[person]["force_code"], row["postcode"]
    for name in ("households.csv", "register.csv"):
        for row in read_csv(scenario.reference_dir / name):
            assert _force_by_table(table, row["postcode"]), row


def test_reference_links_exist(scenario: SynthSummary) -> None:
    persons = read_csv(scenario.truth_dir / "persons.csv")
    register = {r["register_id"] for r in read_csv(scenario.reference_dir / "register.csv")}
    cases = {r["case_ref"] for r in read_csv(scenario.reference_dir / "open_cases.csv")}
    for p in persons:
        assert not p["register_id"] or p["register_id"] in register
        assert not p["open_case"] or p["open_case"] in cases
    alerts = read_csv(scenario.reference_dir / "card_alerts.csv")
    assert {a["alert_type"] for a in alerts} == {"lost", "stolen", "compromised", "disputed"}
    assert all(luhn_ok(a["card_number"]) for a in alerts)


def test_difficulty_and_knobs(tmp_path: Path, standard: SynthSummary, hard: SynthSummary) -> None:
    def dob_missing(s: SynthSummary) -> float:
        truth = read_csv(s.truth_dir / "records.csv")
        rows = [
            r
            for r, t in zip(read_csv(s.package_dir / "leads.csv"), truth, strict=True)
            if t["label"] == "genuine"
        ]
        return sum(1 for r in rows if not r["date_of_birth"]) / len(rows)

    assert dob_missing(hard) > dob_missing(standard)
    calls: list[tuple[str, int, int | None]] = []
    knobbed = generate(tmp_path / "k", seed=7, dob_missing=1.0, progress=lambda *a: calls.append(a), **SMALL)
    assert calls and calls[-1][1] == calls[-1][2]  # progress reported, ending complete
    assert dob_missing(knobbed) == 1.0
    with pytest.raises(ValueError, match="unknown synth knob"):
        generate(tmp_path / "x", seed=7, not_a_knob=0.5, **SMALL)
    with pytest.raises(ValueError, match="difficulty"):
        generate(tmp_path / "y", difficulty="brutal", **SMALL)
    with pytest.raises(ValueError, match="too few"):
        generate(tmp_path / "z", people=100, subscribers=250)
