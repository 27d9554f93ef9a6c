"""The lifecycle: every step in the table is allowed on its path, every other refused; each rule
refuses with its name; the s.38 category follows the status; a refusal leaves nothing behind."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

import pytest
from casekit import T0, add_people
from sqlalchemy import func, select

from ore.cases import ELIMINATION_GROUNDS, STATES, TRANSITIONS, TransitionRefused, seal, transition, unseal
from ore.cases.lifecycle import RULES, legal_category
from ore.store.models import Case, Transition


def path_to(target: str) -> list[str]:
    """The shortest sequence of steps from identified to ``target``, read from the table."""
    prev: dict[str, str | None] = {"identified": None}
    queue = deque(["identified"])
    while queue:
        s = queue.popleft()
        for nxt in TRANSITIONS[s]:
            if nxt not in prev:
                prev[nxt] = s
                queue.append(nxt)
    steps, s = [], target
    while prev[s] is not None:
        steps.append(s)
        s = prev[s]  # type: ignore[assignment]
    return steps[::-1]


def options(to: str) -> dict:
    return {"triaged": {"band": "P2"}, "eliminated": {"ground": "card_fraud_victim"}}.get(to, {})


def walk(session, case: Case, steps: list[str], start=T0, by: str = "sgt.jones") -> None:
    for i, to in enumerate(steps):
        transition(session, case, to, by=by, reason=f"step {i}", at=start + timedelta(hours=i), **options(to))


def get(session, case_id: int) -> Case:
    return session.get(Case, case_id)


EDGES = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]
NON_EDGES = [(a, b) for a in STATES for b in STATES if b not in TRANSITIONS[a] and a != "identified" or
             (a == "identified" and b not in TRANSITIONS[a])]


def test_every_status_is_reachable_and_only_convicted_and_eliminated_are_final() -> None:
    for s in STATES:
        if s != "identified":
            assert path_to(s)[-1] == s
    assert {s for s in STATES if not TRANSITIONS[s]} == {"convicted", "eliminated"}
    # elimination is possible at any point before conviction
    assert all("eliminated" in TRANSITIONS[s] for s in STATES if s not in ("convicted", "eliminated"))


@pytest.mark.parametrize(("start", "to"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_each_legal_step_is_recorded_with_who_when_why(store, start: str, to: str) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        case = get(s, cid)
        walk(s, case, path_to(start) if start != "identified" else [])
        at = T0 + timedelta(days=3)
        transition(s, case, to, by="di.khan", reason="the reason", at=at, **options(to))
        assert case.status == to
        assert legal_category(case)
    with store.session() as s:
        steps = s.scalars(select(Transition).where(Transition.case_id == cid).order_by(Transition.seq.desc())).all()
        if to == "eliminated":  # elimination seals the person: a seal row follows the step
            assert (steps[0].action, steps[0].actor, get(s, cid).sealed) == ("seal", "di.khan", True)
            steps = steps[1:]
        last = steps[0]
        assert (last.from_status, last.to_status, last.actor, last.reason, last.at) == (start, to, "di.khan",
                                                                                      "the reason", at)
        seqs = s.scalars(select(Transition.seq).where(Transition.case_id == cid).order_by(Transition.seq)).all()
        assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize("start", [s for s in STATES if s not in ("identified",)])
def test_steps_outside_the_table_are_refused_by_legal_transition(store, start: str) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        walk(s, get(s, cid), path_to(start))
    for to in STATES:
        if to in TRANSITIONS[start]:
            continue
        with pytest.raises(TransitionRefused) as e, store.session() as s:
            transition(s, get(s, cid), to, by="x", reason="y", at=T0 + timedelta(days=9), **options(to))
        if start == "eliminated":  # elimination sealed the person: that rule answers first
            assert e.value.rule == "sealed"
            continue
        assert e.value.rule == "legal_transition"
        assert f"from {start} a case may go to" in str(e.value)
    with store.session() as s:
        assert get(s, cid).status == start


def test_full_path_to_conviction_sets_milestones_and_category(store) -> None:
    (cid,) = add_people(store, 1)
    steps = ["triaged", "disseminated", "accepted", "under_investigation", "arrested", "interviewed", "charged",
             "convicted"]
    with store.session() as s:
        case = get(s, cid)
        walk(s, case, steps)
        assert case.s38_category == "convicted"
        assert case.band == "P2" and case.band_confirmed and case.force_code == "MPS"
        assert case.arrested_at == T0 + timedelta(hours=4)
        assert case.first_action_at == case.arrested_at
        assert case.convicted_at == T0 + timedelta(hours=7)
    with pytest.raises(TransitionRefused, match="legal_transition"), store.session() as s:
        transition(s, get(s, cid), "eliminated", by="x", reason="too late", ground="card_fraud_victim",
                   at=T0 + timedelta(days=1))


@pytest.mark.parametrize("start", [s for s in STATES if s not in ("convicted", "eliminated")])
def test_elimination_before_conviction_makes_a_card_fraud_victim_a_victim(store, start: str) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        case = get(s, cid)
        walk(s, case, path_to(start) if start != "identified" else [])
        assert case.s38_category == "suspect"
        transition(s, case, "eliminated", by="dci.ward", reason="card used by someone else",
                   ground="card_fraud_victim", at=T0 + timedelta(days=5))
        assert (case.status, case.s38_category, case.sealed) == ("eliminated", "victim", True)
    with store.session() as s:
        last = s.scalars(select(Transition).where(Transition.case_id == cid, Transition.action == "transition")
                         .order_by(Transition.seq.desc())).first()
        assert (last.category_before, last.category_after) == ("suspect", "victim")


def test_elimination_grounds_set_their_category_and_an_unknown_ground_is_refused(store) -> None:
    ids = add_people(store, len(ELIMINATION_GROUNDS) + 1)
    with store.session() as s:
        for cid, (ground, category) in zip(ids, ELIMINATION_GROUNDS.items(), strict=False):
            case = get(s, cid)
            transition(s, case, "eliminated", by="x", reason="y", ground=ground, at=T0)
            assert case.s38_category == category
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, get(s, ids[-1]), "eliminated", by="x", reason="y", ground="bored", at=T0)
    assert e.value.rule == "ground_given"


def test_rule_band_given_triage_needs_a_band(store) -> None:
    (cid,) = add_people(store, 1)
    for band in (None, "P9"):
        with pytest.raises(TransitionRefused) as e, store.session() as s:
            transition(s, get(s, cid), "triaged", by="sup", reason="r", band=band, at=T0)
        assert e.value.rule == "band_given"


def test_rule_band_confirmed_an_unconfirmed_band_is_not_disseminated(store) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        walk(s, get(s, cid), ["triaged"])
    with store.session() as s:  # what an import does when the recommendation changes after confirmation
        get(s, cid).band_confirmed = False
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, get(s, cid), "disseminated", by="sup", reason="go", at=T0 + timedelta(days=1))
    assert e.value.rule == "band_confirmed"
    assert RULES["band_confirmed"].sentence in str(e.value)
    with store.session() as s:  # confirming again allows it
        case = get(s, cid)
        transition(s, case, "triaged", by="sup", reason="still P2", band="P2", at=T0 + timedelta(days=1))
        transition(s, case, "disseminated", by="sup", reason="go", at=T0 + timedelta(days=1))
        assert case.status == "disseminated"


def test_rule_band_actionable_band_none_is_not_disseminated(store) -> None:
    (cid,) = add_people(store, 1, band="none")
    with store.session() as s:
        transition(s, get(s, cid), "triaged", by="sup", reason="likely victim", band="none", at=T0)
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, get(s, cid), "disseminated", by="sup", reason="go", at=T0)
    assert e.value.rule == "band_actionable"


def test_rule_force_named_dissemination_needs_a_force(store) -> None:
    (cid,) = add_people(store, 1, force=None)
    with store.session() as s:
        transition(s, get(s, cid), "triaged", by="sup", reason="r", band="P3", at=T0)
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, get(s, cid), "disseminated", by="sup", reason="go", at=T0)
    assert e.value.rule == "force_named"
    with store.session() as s:
        case = get(s, cid)
        transition(s, case, "disseminated", by="sup", reason="go", force="GMP", at=T0)
        assert case.force_code == "GMP"


def test_rule_grade_c_arrest_needs_a_supervisors_override_and_reason(store) -> None:
    (cid,) = add_people(store, 1, grade="C")
    with store.session() as s:
        walk(s, get(s, cid), ["triaged", "disseminated", "accepted", "under_investigation"])
    at = T0 + timedelta(days=1)
    for extra in ({}, {"override_by": "insp.moss"}, {"override_reason": "identity confirmed"},
                  {"override_by": " ", "override_reason": "x"}):
        with pytest.raises(TransitionRefused) as e, store.session() as s:
            transition(s, get(s, cid), "arrested", by="dc.lee", reason="warrant", at=at, **extra)
        assert e.value.rule == "grade_c_arrest"
    with store.session() as s:  # an interview is not an arrest: allowed without override
        pass
    with store.session() as s:
        case = get(s, cid)
        transition(s, case, "arrested", by="dc.lee", reason="warrant", at=at, override_by="insp.moss",
                   override_reason="identity confirmed by the bank: the card was never reported stolen")
        assert case.status == "arrested"
    with store.session() as s:
        last = s.scalars(select(Transition).where(Transition.case_id == cid).order_by(Transition.seq.desc())).first()
        assert (last.overridden_rule, last.override_by) == ("grade_c_arrest", "insp.moss")
        assert "never reported stolen" in last.override_reason


def test_grade_a_arrest_needs_no_override(store) -> None:
    (cid,) = add_people(store, 1, grade="A")
    with store.session() as s:
        walk(s, get(s, cid), ["triaged", "disseminated", "accepted", "under_investigation", "arrested"])
        assert get(s, cid).status == "arrested"


def test_rule_sealed_a_sealed_person_accepts_nothing_but_unsealing(store) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        seal(s, get(s, cid), by="auditor", reason="wrongly identified", at=T0)
    for to in TRANSITIONS["identified"]:
        with pytest.raises(TransitionRefused) as e, store.session() as s:
            transition(s, get(s, cid), to, by="sup", reason="r", at=T0 + timedelta(hours=1), **options(to))
        assert e.value.rule == "sealed"
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        seal(s, get(s, cid), by="auditor", reason="again")
    assert e.value.rule == "not_sealed"
    with store.session() as s:
        unseal(s, get(s, cid), by="auditor", reason="sealed in error", at=T0 + timedelta(hours=2))
    with store.session() as s:
        transition(s, get(s, cid), "triaged", by="sup", reason="r", band="P1", at=T0 + timedelta(hours=3))
        actions = s.scalars(select(Transition.action).where(Transition.case_id == cid).order_by(Transition.seq)).all()
        assert actions == ["seal", "unseal", "transition"]
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        unseal(s, get(s, cid), by="auditor", reason="not sealed")
    assert e.value.rule == "is_sealed"


@pytest.mark.parametrize(("by", "reason", "rule"), [("", "r", "actor_named"), ("  ", "r", "actor_named"),
                                                    ("sup", "", "reason_given"), ("sup", " ", "reason_given")])
def test_every_step_needs_who_and_why(store, by: str, reason: str, rule: str) -> None:
    (cid,) = add_people(store, 1)
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, get(s, cid), "triaged", by=by, reason=reason, band="P1", at=T0)
    assert e.value.rule == rule


def test_rule_time_order_no_step_before_the_previous_one(store) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        transition(s, get(s, cid), "triaged", by="sup", reason="r", band="P1", at=T0)
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, get(s, cid), "disseminated", by="sup", reason="r", at=T0 - timedelta(minutes=1))
    assert e.value.rule == "time_order"


def test_a_refused_step_leaves_nothing_behind(store) -> None:
    (cid,) = add_people(store, 1, grade="C")
    with store.session() as s:
        walk(s, get(s, cid), ["triaged", "disseminated", "accepted", "under_investigation"])
    with store.session() as s:
        before = (get(s, cid).version, s.scalar(select(func.count()).select_from(Transition)))
    with pytest.raises(TransitionRefused), store.session() as s:
        transition(s, get(s, cid), "arrested", by="dc", reason="r", at=T0 + timedelta(days=1))
    with store.session() as s:
        case = get(s, cid)
        assert case.status == "under_investigation" and case.arrested_at is None
        assert (case.version, s.scalar(select(func.count()).select_from(Transition))) == before


def test_every_rule_has_a_sentence() -> None:
    for rule in RULES.values():
        assert rule.sentence.strip().endswith(".")
