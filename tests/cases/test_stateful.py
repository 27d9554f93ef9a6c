"""Hypothesis drives the lifecycle with any sequence of steps, seals, unseals and safeguarding records:
no sequence reaches an illegal state, every refusal changes nothing, and the funnel always adds up.

The legality checks here are written from the issue's words, not read from the
lifecycle's own table, so they can disagree with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import hypothesis.strategies as st
from casekit import T0, add_people, clear
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from ore.cases import STATES, TransitionRefused, funnel, record_safeguarding, seal, transition, unseal
from ore.cases.deadlines import policy_deadlines
from ore.store import Store
from ore.store.models import Case, Safeguarding, Transition

OUTCOMES_AFTER_ACTION = {"charged", "cautioned", "no_further_action", "released"}


class LifecycleMachine(RuleBasedStateMachine):
    store: ClassVar[Store]

    def __init__(self) -> None:
        super().__init__()
        clear(self.store)
        self.ids = (add_people(self.store, 2, grade="A") + add_people(self.store, 2, grade="C", start=10)
                    + add_people(self.store, 1, force=None, start=20) + add_people(self.store, 1, band="none", start=30))
        self.now = T0
        self.children = 0

    def _case(self, s, i: int) -> Case:
        return s.get(Case, self.ids[i])

    @rule(i=st.integers(0, 5), to=st.sampled_from(STATES), band=st.sampled_from(["P1", "P2", "P3", "P4", "none", None]),
          force=st.sampled_from([None, "GMP"]), override=st.booleans(),
          ground=st.sampled_from([None, "card_fraud_victim", "identity_misused", "witness", "bogus"]),
          hours=st.integers(-2, 400))
    def step(self, i: int, to: str, band: str | None, force: str | None, override: bool, ground: str | None,
             hours: int) -> None:
        at = self.now + timedelta(hours=hours)
        with self.store.session() as s:
            c = self._case(s, i)
            before = (c.status, c.version, c.sealed, c.band, c.band_confirmed, c.s38_category)
            grade, own_force = c.person.evidence_grade, c.person.force_code
        try:
            with self.store.session() as s:
                transition(s, self._case(s, i), to, by="user", reason="because", at=at, band=band, force=force,
                           ground=ground, override_by="insp" if override else None,
                           override_reason="checked" if override else None)
        except TransitionRefused:
            with self.store.session() as s:
                c = self._case(s, i)
                assert (c.status, c.version, c.sealed, c.band, c.band_confirmed, c.s38_category) == before
            return
        self.now = max(self.now, at)
        status, _, sealed, conf_band, confirmed, _ = before
        # Accepted: it must be allowed by the words.
        assert not sealed, "a sealed person took a step"
        assert status not in ("convicted", "eliminated"), f"a step after the final status {status}"
        if to == "disseminated":
            assert confirmed and conf_band in ("P1", "P2", "P3", "P4"), "an unconfirmed or none band disseminated"
            assert force or own_force, "disseminated to no force"
        if to == "arrested" and grade == "C":
            assert override, "arrest on grade C without an override"
        if to == "triaged":
            assert band in ("P1", "P2", "P3", "P4", "none")
        if to == "convicted" or to == "acquitted":
            assert status == "charged"
        if to in OUTCOMES_AFTER_ACTION and to != "no_further_action":
            assert status in ("arrested", "interviewed", "released")
        if to == "eliminated":
            assert ground in (None, "card_fraud_victim", "identity_misused", "witness")

    @rule(i=st.integers(0, 5), data=st.data(), n=st.integers(1, 8), band=st.sampled_from(["P1", "P2", "P3"]))
    def advance(self, i: int, data: st.DataObject, n: int, band: str) -> None:
        """Up to ``n`` plausible next steps on one case, so that deep statuses are reached."""
        from ore.cases import TRANSITIONS

        for _ in range(n):
            with self.store.session() as s:
                status = self._case(s, i).status
            onward = [t for t in TRANSITIONS[status] if t not in ("eliminated", status)]
            nexts = onward if onward and data.draw(st.integers(0, 9)) else list(TRANSITIONS[status])
            if not nexts:
                return
            to = data.draw(st.sampled_from(nexts))
            self.step(i, to, band, "GMP", override=data.draw(st.booleans()), ground="card_fraud_victim",
                      hours=data.draw(st.integers(0, 200)))

    @rule(i=st.integers(0, 5), sealing=st.booleans())
    def seal_or_unseal(self, i: int, sealing: bool) -> None:
        try:
            with self.store.session() as s:
                (seal if sealing else unseal)(s, self._case(s, i), by="auditor", reason="review", at=self.now)
        except TransitionRefused as e:
            assert e.rule in ("not_sealed", "is_sealed")

    @rule(i=st.integers(0, 5), n=st.integers(1, 3), safe=st.integers(0, 3))
    def safeguard(self, i: int, n: int, safe: int) -> None:
        from ore.errors import OreError

        try:
            with self.store.session() as s:
                record_safeguarding(s, self._case(s, i), identified=n, safeguarded=safe, agency="LA", by="dc")
            self.children += safe
        except OreError:
            assert safe > n or self._sealed(i)

    def _sealed(self, i: int) -> bool:
        with self.store.session() as s:
            return self._case(s, i).sealed

    @invariant()
    def every_case_is_in_a_legal_state(self) -> None:
        deadlines = policy_deadlines()
        with self.store.session() as s:
            all_steps: dict[int, list[Transition]] = {cid: [] for cid in self.ids}
            for t in s.scalars(select(Transition).order_by(Transition.case_id, Transition.seq)):
                all_steps[t.case_id].append(t)
            for c in s.scalars(select(Case).where(Case.id.in_(self.ids))):
                steps = all_steps[c.id]
                assert [t.seq for t in steps] == list(range(1, len(steps) + 1)) == list(range(1, c.event_count + 1))
                assert c.status in STATES
                if c.status == "convicted":
                    assert c.s38_category == "convicted" and c.charged_at is not None
                elif c.status == "eliminated":
                    assert c.convicted_at is None and c.s38_category in ("victim", "witness")
                else:
                    assert c.s38_category == "suspect"
                if c.arrested_at or c.interviewed_at:
                    assert c.disseminated_at is not None and c.band in ("P1", "P2", "P3", "P4")
                    assert c.first_action_at is not None and c.first_action_at >= c.disseminated_at
                if c.disseminated_at is not None:
                    assert c.force_code and c.due_at == c.disseminated_at + deadlines[c.band]
                if c.arrested_at and c.person.evidence_grade == "C":
                    arrest = next(t for t in steps if t.to_status == "arrested")
                    assert arrest.overridden_rule == "grade_c_arrest" and arrest.override_by
                sealed = False
                for t in steps:  # nothing but unsealing while sealed
                    if sealed:
                        assert t.action == "unseal"
                    sealed = {"seal": True, "unseal": False}.get(t.action, sealed)
                    assert t.actor and t.reason and t.at is not None
                assert sealed == c.sealed
                times = [t.at for t in steps if t.action == "transition"]
                assert times == sorted(times)

    @invariant()
    def the_funnel_adds_up(self) -> None:
        with self.store.session() as s:
            for by in (None, "band", "force"):
                f = funnel(s, by=by)
                assert f.inconsistencies() == []
                assert f.total.counts["identified"] == len(self.ids)
            assert f.total.counts["children_safeguarded"] == self.children
            assert sum(s.scalars(select(Safeguarding.children_safeguarded)).all()) == self.children


def test_no_sequence_of_actions_reaches_an_illegal_state(store) -> None:
    LifecycleMachine.store = store
    examples = 20 if store.dialect == "sqlite" else 8
    run_state_machine_as_test(LifecycleMachine, settings=settings(
        max_examples=examples, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
