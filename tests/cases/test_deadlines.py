"""Deadlines from the confirmed band, counted from dissemination; overdue until the first action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from casekit import T0, add_people

from ore.assess import load_policy
from ore.cases import overdue, policy_deadlines, seal, transition
from ore.cases.deadlines import parse_duration
from ore.errors import OreError
from ore.store.models import Case

EXPECTED = {"P1": timedelta(hours=24), "P2": timedelta(days=7), "P3": timedelta(days=14), "P4": timedelta(days=30)}


def test_deadlines_are_the_policy_files() -> None:
    assert policy_deadlines() == EXPECTED
    assert set(load_policy().deadlines) == set(EXPECTED)


@pytest.mark.parametrize(("text", "delta"), [("24 hours", timedelta(hours=24)), ("7 days", timedelta(days=7)),
                                             ("1 day", timedelta(days=1)), ("2 weeks", timedelta(weeks=2))])
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "soon", "7", "-1 days", "1 fortnight"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(OreError):
        parse_duration(text)


def disseminate(store, band: str, *, at=T0, force: str = "MPS", n: int = 1, start: int = 0) -> list[int]:
    ids = add_people(store, n, band=band, force=force, start=start)
    with store.session() as s:
        for cid in ids:
            case = s.get(Case, cid)
            transition(s, case, "triaged", by="sup", reason="confirmed", band=band, at=at)
            transition(s, case, "disseminated", by="sup", reason="to the force", at=at)
    return ids


@pytest.mark.parametrize("band", ["P1", "P2", "P3", "P4"])
def test_due_time_is_dissemination_plus_the_bands_deadline(store, band: str) -> None:
    (cid,) = disseminate(store, band)
    with store.session() as s:
        assert s.get(Case, cid).due_at == T0 + EXPECTED[band]
        due = T0 + EXPECTED[band]
        assert overdue(s, now=due - timedelta(seconds=1)) == []
        late = overdue(s, now=due + timedelta(seconds=1))
        assert [(o.band, o.due_at, o.overdue_by) for o in late] == [(band, due, timedelta(seconds=1))]


def test_band_none_has_no_deadline_and_an_undisseminated_case_is_never_overdue(store) -> None:
    add_people(store, 3)
    with store.session() as s:
        assert overdue(s, now=T0 + timedelta(days=365)) == []


@pytest.mark.parametrize(("action", "kw"), [("arrested", {}), ("interviewed", {}), ("no_further_action", {}),
                                            ("eliminated", {"ground": "card_fraud_victim"})])
def test_the_first_action_stops_the_clock(store, action: str, kw: dict) -> None:
    (cid,) = disseminate(store, "P1")
    with store.session() as s:
        case = s.get(Case, cid)
        for to in ("accepted", "under_investigation"):
            transition(s, case, to, by="dc", reason="r", at=T0 + timedelta(hours=1))
        assert len(overdue(s, now=T0 + timedelta(days=2))) == 1  # acceptance is not an action on the lead
        transition(s, case, action, by="dc", reason="r", at=T0 + timedelta(hours=30), **kw)
        assert case.first_action_at == T0 + timedelta(hours=30)
        assert overdue(s, now=T0 + timedelta(days=2)) == []


def test_overdue_lists_most_overdue_first_filters_by_force_and_hides_sealed(store) -> None:
    p4 = disseminate(store, "P4", force="GMP", start=0)
    p1 = disseminate(store, "P1", force="MPS", start=10)
    sealed = disseminate(store, "P1", force="MPS", start=20)
    with store.session() as s:
        seal(s, s.get(Case, sealed[0]), by="auditor", reason="eliminated elsewhere", at=T0 + timedelta(hours=2))
    now = T0 + timedelta(days=40)
    with store.session() as s:
        rows = overdue(s, now=now)
        assert [r.person_ref for r in rows] == ["PER000010", "PER000000"]
        assert [r.person_ref for r in overdue(s, now=now, force="GMP")] == ["PER000000"]
        assert p4 and p1
