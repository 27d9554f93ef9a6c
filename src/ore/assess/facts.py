"""The facts a priority rests on, gathered per person from links, records and evidence.

Facts are what ore found (a register link with its probability, a count of own
purchases); the policy turns facts into bands. Keeping them apart lets an analyst
change the banding without touching how facts are established.

The joins and counts over links and records are SQL on a ``StageSQL`` (``ore.stagesql``: the
workspace's DuckDB, or Spark SQL); their rows, a few per person, are made facts here in Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ore.stagesql import StageSQL, lit

# what gather reads
INPUTS = ("identified_persons", "holding_links", "ref_register", "ref_convictions", "ref_employment",
          "ref_households", "ref_open_cases", "person_evidence", "resolved_records", "leads", "record_evidence")


@dataclass
class Fact:
    code: str  # a factor name in the policy
    values: dict[str, Any]  # fills the factor's sentence
    band_hint: str | None = None  # e.g. register risk level, looked up in the policy


@dataclass
class PersonFacts:
    person_id: str
    facts: list[Fact] = field(default_factory=list)
    likely_victim: bool = False
    evidence_grade: str = "B"
    abuse_records: int = 0  # non-adult records resolved to the person, any status
    own_abuse: int = 0  # ... of them not suspected of being card fraud
    own_purchases: int = 0  # approved, not suspected
    own_months: int = 0
    all_purchases: int = 0  # approved, whoever made them
    all_months: int = 0
    own_adult: int = 0


# conviction categories a certain link would make a factor of, as a possible match names them
POSSIBLE = {"sexual_contact_child": "the conviction for contact offending against a child",
            "sexual_contact_adult": "the conviction for a sexual offence",
            "iioc": "the conviction for indecent images of children"}
POSSIBLE_WHAT = {**POSSIBLE, "register": "the register entry", "employment": "the job with children"}


def _pct(p: float | None) -> str:
    return "unknown" if p is None else f"{p:.1%}"


def gather(sql: StageSQL, package_id: str, min_probability: float,
           possible_probability: float | None = None) -> dict[str, PersonFacts]:
    """Facts per identified person: links from ``min_probability`` up; open cases and possible
    matches (``possible_link``) from ``possible_probability`` up (default: ``min_probability``)."""
    possible = min_probability if possible_probability is None else possible_probability
    pkg, at_least, may_be = lit(package_id), float(min_probability), float(possible)
    sql.inputs(package_id, *INPUTS)
    people: dict[str, PersonFacts] = {
        pid: PersonFacts(pid)
        for (pid,) in sql.rows(f"SELECT person_id FROM identified_persons WHERE package_id = {pkg} ORDER BY person_id")
    }

    def links(join: str, holding: str, floor: float = at_least, also: str = "", group: str = "") -> str:
        # ordered, so that a person's facts (and sentences) come in one order on every engine
        return (f"FROM holding_links h {join} WHERE h.package_id = {pkg} AND h.holding = '{holding}' "
                f"AND h.match_probability >= {floor!r} {also} {group} ORDER BY h.person_id, h.ref")

    rows = sql.rows

    facts: dict[str, list[Fact]] = defaultdict(list)
    for pid, ref, offence, risk, p in rows(
        "SELECT h.person_id, r.register_id, r.offence_type, r.risk_level, h.match_probability "
        + links("JOIN ref_register r ON r.register_id = h.ref", "register")
    ):
        facts[pid].append(Fact("registered_offender", {"register_id": ref, "offence_type": offence or "unknown",
                                                       "risk_level": risk or "unknown", "probability": _pct(p)},
                               band_hint=risk))
    for pid, ref, cat, when, p in rows(
        "SELECT h.person_id, c.conviction_ref, c.offence_category, c.offence_date, h.match_probability "
        + links("JOIN ref_convictions c ON c.conviction_ref = h.ref", "convictions")
    ):
        code = {"sexual_contact_child": "contact_offence_child", "sexual_contact_adult": "sexual_offence_conviction",
                "iioc": "iioc_conviction"}.get(cat or "")
        if code:
            facts[pid].append(Fact(code, {"conviction_ref": ref, "offence_category": cat,
                                          "offence_date": when or "date unknown", "probability": _pct(p)}))
    for pid, employer, occupation, sector, p in rows(
        "SELECT h.person_id, e.employer, e.occupation, e.sector, h.match_probability "
        + links("JOIN ref_employment e ON e.employment_ref = h.ref", "employment", also="AND e.works_with_children")
    ):
        facts[pid].append(Fact("works_with_children", {"employer": employer or "unknown employer",
                                                       "occupation": occupation or "a job",
                                                       "sector": sector or "sector unknown", "probability": _pct(p)}))
    for pid, address, children, p in rows(
        "SELECT h.person_id, h.ref, max(x.children_under_18), max(h.match_probability) "
        + links("JOIN ref_households x ON concat_ws('|', x.address_line1, x.postcode) = h.ref", "households",
                also="AND x.children_under_18 > 0", group="GROUP BY h.person_id, h.ref")
    ):
        facts[pid].append(Fact("children_in_household", {"children": children, "address": address.replace("|", ", "),
                                                         "probability": _pct(p)}))
    for pid, ref, force in rows(
        "SELECT h.person_id, o.case_ref, o.force_code "
        + links("JOIN ref_open_cases o ON o.case_ref = h.ref", "open_cases", floor=may_be)
    ):
        facts[pid].append(Fact("open_case", {"case_ref": ref, "force_code": force or "another force"}))
    # under the bar, over the possible: what would raise the band if it were certain
    for pid, kind, ref, p in rows(
        f"""
        SELECT h.person_id, coalesce(c.offence_category, h.holding), h.ref, h.match_probability
        FROM holding_links h
        LEFT JOIN ref_convictions c ON h.holding = 'convictions' AND c.conviction_ref = h.ref
        LEFT JOIN ref_employment e ON h.holding = 'employment' AND e.employment_ref = h.ref
        WHERE h.package_id = {pkg} AND h.match_probability >= {may_be!r} AND h.match_probability < {at_least!r}
          AND (h.holding = 'register'
               OR (h.holding = 'convictions' AND c.offence_category IN ({", ".join(f"'{k}'" for k in POSSIBLE)}))
               OR (h.holding = 'employment' AND e.works_with_children))
        ORDER BY h.person_id, h.match_probability DESC, h.ref
        """
    ):
        facts[pid].append(Fact("possible_link", {"what": POSSIBLE_WHAT[kind], "ref": ref, "probability": _pct(p),
                                                 "needed": _pct(min_probability)}))
    for pid, address, children, p in rows(
        f"""SELECT h.person_id, h.ref, max(x.children_under_18), max(h.match_probability)
           FROM holding_links h JOIN ref_households x ON concat_ws('|', x.address_line1, x.postcode) = h.ref
           WHERE h.package_id = {pkg} AND h.holding = 'households' AND x.children_under_18 > 0
           GROUP BY h.person_id, h.ref
           HAVING max(h.match_probability) >= {may_be!r} AND max(h.match_probability) < {at_least!r}
           ORDER BY h.person_id, h.ref"""
    ):
        facts[pid].append(Fact("possible_link", {
            "what": f"the household with {children} child(ren) under 18 at", "ref": address.replace("|", ", "),
            "probability": _pct(p), "needed": _pct(min_probability)}))
    for pid, fs in facts.items():
        if pid in people:
            people[pid].facts.extend(fs)

    for pid, grade, victim in rows(
        f"SELECT person_id, evidence_grade, likely_victim FROM person_evidence WHERE package_id = {pkg}"
    ):
        if pid in people:
            people[pid].evidence_grade = grade or "B"
            people[pid].likely_victim = bool(victim)

    month = "strftime(l.transaction_time, '%Y-%m')"
    # A record whose category is missing takes the category its product has on the package's other
    # records (a merchant sells one site under one code); still unknown counts as possibly abuse.
    abuse = "coalesce(nullif(l.product_category, 'unknown'), c.category, 'unknown') <> 'adult'"
    own = "NOT coalesce(e.fraud_suspected, false)"
    approved = "l.status = 'approved'"
    for pid, *counts in rows(
        f"""
        SELECT r.person_id,
               count(*) FILTER (WHERE {abuse}),
               count(*) FILTER (WHERE {abuse} AND {own}),
               count(*) FILTER (WHERE {abuse} AND {own} AND {approved}),
               count(DISTINCT {month}) FILTER (WHERE {abuse} AND {own} AND {approved}),
               count(*) FILTER (WHERE {abuse} AND {approved}),
               count(DISTINCT {month}) FILTER (WHERE {abuse} AND {approved}),
               count(*) FILTER (WHERE NOT ({abuse}) AND {own})
        FROM resolved_records r
        JOIN leads l USING (package_id, record_id)
        LEFT JOIN record_evidence e USING (package_id, record_id)
        LEFT JOIN (
            -- the product's commoner category; a tie counts as abuse (not set aside as adult-only)
            SELECT product, CASE WHEN count(*) FILTER (WHERE product_category = 'adult')
                                      > count(*) FILTER (WHERE product_category = 'abuse')
                                 THEN 'adult' ELSE 'abuse' END AS category
            FROM leads
            WHERE package_id = {pkg} AND product_category IN ('abuse', 'adult') GROUP BY product
        ) c ON c.product = l.product
        WHERE r.package_id = {pkg}
        GROUP BY r.person_id
        """
    ):
        if pid in people:
            p = people[pid]
            (p.abuse_records, p.own_abuse, p.own_purchases, p.own_months, p.all_purchases, p.all_months,
             p.own_adult) = counts
    return people
