"""From facts to an advisory band with its reasons, by the policy file.

Who is not a suspect is decided first: a likely card-fraud victim, or someone who
bought adult-only access, is ``none`` whatever else is known, because a payment
record is an allegation about a card. For everyone else the band is the most
urgent band of the factors that apply (children first), and every factor that
applies is kept as a reason with its sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ore.assess.facts import Fact, PersonFacts
from ore.assess.policy import Policy


@dataclass
class Assessment:
    priority: str
    reasons: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


class _Blank(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "?"


def _say(template: str, values: dict[str, object]) -> str:
    return template.format_map(_Blank({k: v for k, v in values.items() if v is not None}))


def assess_person(p: PersonFacts, policy: Policy) -> Assessment:
    if p.likely_victim:
        return Assessment("none", ["likely_victim"], [policy.not_suspect["likely_victim"]])
    if p.abuse_records == 0:
        return Assessment("none", ["adult_only"], [policy.not_suspect["adult_only"]])
    facts: list[Fact] = list(p.facts)
    # Purchases: the person's own ones where evidence separates them; all, when nothing was set aside.
    purchases, months = (p.own_purchases, p.own_months) if p.own_abuse else (p.all_purchases, p.all_months)
    attempts = p.own_abuse or p.abuse_records
    if purchases >= 2 and months >= 2:
        facts.append(Fact("repeat_purchases", {"purchases": purchases, "months": months}))
    else:
        facts.append(Fact("abuse_purchase", {"purchases": max(purchases, attempts)}))
    if p.evidence_grade == "C":
        facts.append(Fact("evidence_contradicted", {}))
    band = "P4"
    reasons: list[str] = []
    sentences: list[str] = []
    for fact in _ordered(facts, policy):
        factor = policy.factors[fact.code]
        fband = factor.band
        if fact.code == "registered_offender" and fact.band_hint in policy.register_risk_bands:
            fband = policy.register_risk_bands[fact.band_hint]
        if fband is not None and policy.rank(fband) < policy.rank(band):
            band = fband
        if fact.code not in reasons:
            reasons.append(fact.code)
        sentences.append(_say(factor.sentence, fact.values))
    return Assessment(band, reasons, sentences)


def _ordered(facts: list[Fact], policy: Policy) -> list[Fact]:
    """Most urgent factors first, so the first reason is the one that set the band."""
    def key(f: Fact) -> int:
        band = policy.factors[f.code].band
        return policy.rank(band) if band else len(policy.bands)

    return sorted(facts, key=key)
