"""Policy rules: each factor sets its band, non-suspects are none, reasons carry sentences."""

from pathlib import Path

import pytest
import yaml

from ore.assess import Fact, PersonFacts, assess_person, load_policy
from ore.errors import OreError

POLICY = load_policy()


def buyer(**kw: object) -> PersonFacts:
    p = PersonFacts("P1", abuse_records=1, own_abuse=1, own_purchases=1, own_months=1, all_purchases=1, all_months=1)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


REGISTER = Fact("registered_offender", {"register_id": "REG1", "offence_type": "online", "risk_level": "low",
                                        "probability": "99.0%"}, band_hint="low")


@pytest.mark.parametrize(
    ("fact", "band"),
    [
        (REGISTER, "P1"),
        (Fact("contact_offence_child", {"conviction_ref": "C1"}), "P1"),
        (Fact("works_with_children", {"occupation": "Teacher"}), "P1"),
        (Fact("children_in_household", {"children": 2}), "P1"),
        (Fact("sexual_offence_conviction", {"conviction_ref": "C2"}), "P2"),
        (Fact("iioc_conviction", {"conviction_ref": "C3"}), "P2"),
    ],
)
def test_each_factor_sets_its_band(fact: Fact, band: str) -> None:
    a = assess_person(buyer(facts=[fact]), POLICY)
    assert a.priority == band
    assert a.reasons[0] == fact.code
    assert len(a.sentences) == len(a.reasons)


def test_repeat_purchases_over_months_is_p3_and_a_single_purchase_p4() -> None:
    assert assess_person(buyer(own_purchases=5, own_months=4), POLICY).reasons == ["repeat_purchases"]
    assert assess_person(buyer(own_purchases=5, own_months=4), POLICY).priority == "P3"
    assert assess_person(buyer(), POLICY).priority == "P4"
    # many purchases within one month are not purchases "over months"
    assert assess_person(buyer(own_purchases=3, own_months=1), POLICY).priority == "P4"


def test_most_urgent_factor_wins_and_every_reason_is_kept() -> None:
    a = assess_person(buyer(facts=[Fact("iioc_conviction", {}), REGISTER], own_purchases=3, own_months=3), POLICY)
    assert a.priority == "P1"
    assert a.reasons == ["registered_offender", "iioc_conviction", "repeat_purchases"]
    assert "REG1" in a.sentences[0] and "low risk" in a.sentences[0]


def test_likely_victim_is_never_a_suspect_whatever_else_is_known() -> None:
    a = assess_person(buyer(facts=[REGISTER], likely_victim=True), POLICY)
    assert (a.priority, a.reasons) == ("none", ["likely_victim"])


def test_adult_only_buyer_is_not_actioned() -> None:
    a = assess_person(buyer(abuse_records=0, own_abuse=0, own_purchases=0, own_adult=3), POLICY)
    assert (a.priority, a.reasons) == ("none", ["adult_only"])


def test_contradicted_evidence_keeps_the_band_but_says_so() -> None:
    a = assess_person(buyer(facts=[Fact("children_in_household", {"children": 1})], evidence_grade="C"), POLICY)
    assert a.priority == "P1"
    assert "evidence_contradicted" in a.reasons


def test_open_case_is_a_reason_not_a_band() -> None:
    a = assess_person(buyer(facts=[Fact("open_case", {"case_ref": "X/1", "force_code": "KNT"})]), POLICY)
    assert a.priority == "P4"
    assert "open_case" in a.reasons and any("X/1" in s for s in a.sentences)


def _policy_file(tmp_path: Path, change: dict) -> Path:
    data = yaml.safe_load(Path(__file__).parents[2].joinpath("src/ore/assess/policy.yaml").read_text())
    for path, value in change.items():
        node = data
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    out = tmp_path / "policy.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def test_a_user_changes_the_banding_without_code(tmp_path: Path) -> None:
    policy = load_policy(_policy_file(tmp_path, {"register_risk_bands.low": "P2"}))
    assert assess_person(buyer(facts=[REGISTER]), policy).priority == "P2"
    policy = load_policy(_policy_file(tmp_path, {"factors.repeat_purchases.band": "P2"}))
    assert assess_person(buyer(own_purchases=4, own_months=4), policy).priority == "P2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"factors.works_with_children.band": "P9"}, "factors.works_with_children.band"),
        ({"bands": ["P1", "P2"]}, "bands"),
        ({"min_link_probability": 2}, "min_link_probability"),
        ({"possible_link_probability": 0.95}, "possible_link_probability"),
        ({"register_risk_bands.high": "urgent"}, "register_risk_bands"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(OreError, match=message):
        load_policy(_policy_file(tmp_path, change))


def test_unreadable_policy_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("factors: [unclosed", encoding="utf-8")
    with pytest.raises(OreError, match="p.yaml: not valid YAML"):
        load_policy(bad)
