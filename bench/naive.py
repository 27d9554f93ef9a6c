"""The naive exact-match method: the baseline ``make bench`` sets beside ore.

What a careful analyst with a spreadsheet would do with a lead package, as issue 8 puts it:
every cardholder is a suspect, and a cardholder is matched to the holdings by exact name and
postcode only. No Splink, no fraud corroboration, no unidentified subjects.

    python bench/naive.py PACKAGE --reference REFDIR --out OUTDIR

It writes the triage output format (``shared/spec/triage-output.md``: records.csv,
persons.csv, quarantine.csv) so the same scorer scores it as it scores ore. To keep the
comparison about the method and not about the parts every analyst does the same way, it
shares with ore what the formats and the policy prescribe: the package format's
quarantine rules (ore's card and time checks), routing by the postcode table's longest
prefix, and the band of each factor from ore's policy file. What it does not do is what
ore is for:

- a person is one exact name and postcode (trimmed, upper case, single spaces; the postcode
  without spaces): a typo, a nickname, an initial or a move makes another person, and two
  records of the same name and postcode are one person whatever else they say;
- a holding (register, convictions, employment, open cases) links on the same exact name
  and postcode; a household on its exact first address line and postcode; no date of birth
  is compared, so a namesake at the same postcode links and a moved person does not;
- no record is suspected of card fraud and no cardholder is a likely victim: everyone whose
  card bought abuse access (any status, as ore counts attempts) is a suspect, banded by the
  policy's factors; only a cardholder of adult-only purchases is not actioned.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ore.allocate.postcodes import compact, prefix_key, pretty, routing_keys
from ore.assess.policy import Policy, load_policy
from ore.ingest.cards import CardError, card_digits
from ore.ingest.schema import parse_datetime

Key = tuple[str, str]  # (name, postcode), both normalised
PERSON_COLUMNS = ["person_id", "kind", "display_name", "date_of_birth", "postcode", "force_code", "evidence_grade",
                  "likely_victim", "priority", "priority_reasons", "register_ref", "conviction_refs",
                  "employment_refs", "children_in_household", "open_case_refs", "record_count"]
CONVICTION_FACTOR = {"sexual_contact_child": "contact_offence_child",
                     "sexual_contact_adult": "sexual_offence_conviction", "iioc": "iioc_conviction"}


def name_key(text: str | None) -> str:
    """A name as a spreadsheet's TRIM(UPPER(...)) leaves it."""
    return " ".join((text or "").upper().split())


def person_key(first: str, last: str, cardholder: str, postcode: str) -> Key:
    """The identity a row names: first and last name (else the name on the card) and postcode."""
    name = name_key(f"{first} {last}") or name_key(cardholder)
    return name, compact(postcode)


def quarantine_reason(row: dict[str, str], seen: set[str], now: datetime) -> str | None:
    """Why the package format rejects this row (the spec's rules), or None."""
    rid = (row.get("record_id") or "").strip()
    if not rid:
        return "record_id is missing"
    if rid in seen:
        return f"record_id {rid} is a duplicate"
    try:
        card_digits(row.get("card_number") or "")
    except CardError as e:
        return str(e)
    raw = (row.get("transaction_time") or "").strip()
    try:
        when = parse_datetime(raw)
    except (ValueError, OverflowError):
        return f"transaction_time {raw!r} is not an ISO 8601 date-time"
    if when > now:
        return f"transaction_time {raw} is in the future"
    amount = (row.get("amount") or "").strip()
    try:
        number = float(Decimal(amount))
    except (InvalidOperation, ValueError, OverflowError):
        return f"amount {amount!r} is not a number"
    if not math.isfinite(number) or number <= 0:
        return f"amount {amount!r} is not a positive finite number"
    return None


@dataclass
class Suspect:
    """One exact name and postcode, with what its records and the exact holdings links say."""

    key: Key
    records: int = 0
    abuse: int = 0
    approved_abuse: int = 0
    months: set[str] = field(default_factory=set)
    dobs: Counter[str] = field(default_factory=Counter)
    addresses: set[str] = field(default_factory=set)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def read_leads(package: Path, now: datetime) -> tuple[list[tuple[str, Key]], dict[Key, Suspect], list[list[str]]]:
    """Accepted records (record id, person key), the persons they name, and the quarantined rows."""
    records: list[tuple[str, Key]] = []
    persons: dict[Key, Suspect] = {}
    quarantined: list[list[str]] = []
    seen: set[str] = set()
    with (package / "leads.csv").open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        _ = reader.fieldnames  # reads the header (line 1)
        next_line = reader.line_num + 1
        for row in reader:
            line, next_line = next_line, reader.line_num + 1  # a quoted line break spans lines
            reason = quarantine_reason(row, seen, now)
            rid = (row.get("record_id") or "").strip()
            if reason:
                quarantined.append([str(line), rid, reason])
                continue
            seen.add(rid)
            key = person_key(row.get("first_name", ""), row.get("last_name", ""), row.get("cardholder_name", ""),
                             row.get("postcode", ""))
            if key == ("", ""):
                key = ("", f"#{rid}")  # a row naming nobody is a cardholder of its own
            records.append((rid, key))
            p = persons.get(key) or persons.setdefault(key, Suspect(key))
            p.records += 1
            if (row.get("product_category") or "").strip().lower() == "abuse":
                p.abuse += 1
                if (row.get("status") or "").strip().lower() == "approved":
                    p.approved_abuse += 1
                    p.months.add(row["transaction_time"].strip()[:7])
            if dob := (row.get("date_of_birth") or "").strip():
                p.dobs[dob] += 1
            if line1 := name_key(row.get("address_line1")):
                p.addresses.add(line1)
    return records, persons, quarantined


def holdings_index(reference: Path) -> dict[str, dict[Key, list[dict[str, str]]]]:
    """Each person-level holding keyed by exact name and postcode, as a lookup column would."""
    index: dict[str, dict[Key, list[dict[str, str]]]] = {}
    for name in ("register", "convictions", "employment", "open_cases"):
        table: dict[Key, list[dict[str, str]]] = defaultdict(list)
        for row in read_csv(reference / f"{name}.csv"):
            table[person_key(row.get("first_name", ""), row.get("last_name", ""), "", row.get("postcode", ""))].append(row)
        index[name] = table
    return index


def households_index(reference: Path) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for row in read_csv(reference / "households.csv"):
        try:
            children = int(row.get("children_under_18") or 0)
        except ValueError:
            continue
        key = (name_key(row.get("address_line1")), compact(row.get("postcode")))
        out[key] = max(children, out.get(key, 0))
    return out


def routing(reference: Path) -> dict[str, str]:
    return {prefix_key(r["prefix"]): r["force_code"] for r in read_csv(reference / "postcode_forces.csv")}


def force_of(postcode: str, table: dict[str, str]) -> str:
    return next((table[k] for k in routing_keys(postcode) if k in table), "")


def assess(p: Suspect, links: dict[str, list[dict[str, str]]], children: int, policy: Policy) -> tuple[str, list[str]]:
    """The band and reasons of ore's policy from the exact links; no one is set aside as a victim."""
    if p.abuse == 0:
        return "none", ["adult_only"]
    facts: list[tuple[str, str | None]] = []
    for r in links["register"]:
        facts.append(("registered_offender", r.get("risk_level")))
    for r in links["convictions"]:
        if code := CONVICTION_FACTOR.get(r.get("offence_category", "")):
            facts.append((code, None))
    if any(r.get("works_with_children", "").strip().lower() == "true" for r in links["employment"]):
        facts.append(("works_with_children", None))
    if children > 0:
        facts.append(("children_in_household", None))
    if p.approved_abuse >= 2 and len(p.months) >= 2:
        facts.append(("repeat_purchases", None))
    else:
        facts.append(("abuse_purchase", None))
    if links["open_cases"]:
        facts.append(("open_case", None))
    band, reasons = "P4", []
    for code, hint in facts:
        fband = policy.factors[code].band
        if code == "registered_offender" and hint in policy.register_risk_bands:
            fband = policy.register_risk_bands[hint]
        if fband is not None and policy.rank(fband) < policy.rank(band):
            band = fband
        if code not in reasons:
            reasons.append(code)
    reasons.sort(key=lambda c: policy.rank(policy.factors[c].band or "none"))
    return band, reasons


def triage(package: Path, reference: Path, out: Path, now: datetime | None = None) -> dict[str, int]:
    """Write records.csv, persons.csv and quarantine.csv of the naive method into ``out``."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    policy = load_policy()
    records, persons, quarantined = read_leads(package, now)
    holdings = holdings_index(reference)
    households = households_index(reference)
    forces = routing(reference)
    ids = {key: f"N{i:07d}" for i, key in enumerate(sorted(persons), start=1)}
    out.mkdir(parents=True, exist_ok=True)
    with (out / "records.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["record_id", "person_id", "subject_id", "fraud_suspected", "fraud_indicators"])
        w.writerows([rid, ids[key], "", "false", ""] for rid, key in records)
    bands: Counter[str] = Counter()
    with (out / "persons.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(PERSON_COLUMNS)
        for key in sorted(persons):
            p = persons[key]
            links = {name: table.get(key, []) if key[0] else [] for name, table in holdings.items()}
            children = max((households.get((a, key[1]), 0) for a in p.addresses), default=0)
            band, reasons = assess(p, links, children, policy)
            bands[band] += 1
            postcode = "" if key[1].startswith("#") else pretty(key[1]) or key[1]
            w.writerow([ids[key], "identified", key[0].title(), p.dobs.most_common(1)[0][0] if p.dobs else "",
                        postcode, force_of(key[1], forces), "B", "false", band, ";".join(reasons),
                        ";".join(r["register_id"] for r in links["register"]),
                        ";".join(r["conviction_ref"] for r in links["convictions"]),
                        ";".join(r["employment_ref"] for r in links["employment"]),
                        children, ";".join(r["case_ref"] for r in links["open_cases"]), p.records])
    with (out / "quarantine.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line", "record_id", "reason"])
        w.writerows(quarantined)
    return {"records": len(records), "quarantined": len(quarantined), "persons": len(persons),
            **{f"band_{b}": n for b, n in sorted(bands.items())}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package", type=Path, help="lead package directory (leads.csv)")
    ap.add_argument("--reference", type=Path, required=True, help="reference holdings directory")
    ap.add_argument("--out", type=Path, required=True, help="output directory (records, persons, quarantine)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    summary = triage(args.package, args.reference, args.out)
    print({**summary, "seconds": round(time.perf_counter() - start, 2)}, file=sys.stderr)


if __name__ == "__main__":
    main()
