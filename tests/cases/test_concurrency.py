"""Two investigators updating one case: the second writer gets a clear conflict, nothing is lost.

Each session below holds its own database connection (two real connections on
PostgreSQL; two SQLite connections on the same WAL file).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from casekit import T0, add_people
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from ore.cases import find_case, transition
from ore.cases.safeguarding import record_safeguarding
from ore.store import CaseConflict
from ore.store.models import Case, Transition


def _overlapping(store) -> None:
    """Two transactions holding one case at once happen on PostgreSQL only.

    SQLite starts every transaction with BEGIN IMMEDIATE (``ore.store.engine``): the
    second waits for the first to commit and then reads its step, so it cannot act on a
    stale version; tests/reliability/test_sqlite_web_cli.py covers that wait.
    """
    if store.dialect == "sqlite":
        pytest.skip("SQLite serialises transactions (BEGIN IMMEDIATE): no two hold a case at once")


def _ready(store) -> int:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        case = s.get(Case, cid)
        for i, (to, kw) in enumerate([("triaged", {"band": "P1"}), ("disseminated", {}), ("accepted", {}),
                                      ("under_investigation", {})]):
            transition(s, case, to, by="sup", reason="r", at=T0 + timedelta(hours=i), **kw)
    return cid


def test_second_writer_gets_a_conflict_and_the_first_update_stands(store) -> None:
    _overlapping(store)
    cid = _ready(store)
    first, second = store.sessions(), store.sessions()
    try:
        a = first.get(Case, cid)
        b = second.get(Case, cid)  # both investigators read version n
        assert a.version == b.version
        transition(first, a, "arrested", by="dc.ali", reason="warrant executed", at=T0 + timedelta(days=1))
        first.commit()
        with pytest.raises(StaleDataError):  # the UPDATE found version n gone: the ORM's optimistic lock
            transition(second, b, "no_further_action", by="dc.bo", reason="nothing found",
                       at=T0 + timedelta(days=1))
        second.rollback()
    finally:
        first.close()
        second.close()
    with store.session() as s:
        case = s.get(Case, cid)
        assert case.status == "arrested"
        steps = s.scalars(select(Transition).where(Transition.case_id == cid).order_by(Transition.seq)).all()
        assert [t.to_status for t in steps][-1] == "arrested"
        assert [t.seq for t in steps] == list(range(1, len(steps) + 1))
        assert "no_further_action" not in [t.to_status for t in steps]


def test_store_session_reports_the_conflict_and_a_retry_after_reloading_succeeds(store) -> None:
    _overlapping(store)
    cid = _ready(store)
    reader_done, writer_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_investigator() -> None:
        try:
            with store.session() as s:
                case = s.get(Case, cid)
                _ = case.version
                reader_done.set()
                writer_done.wait(10)  # the other investigator commits in between
                transition(s, case, "interviewed", by="dc.slow", reason="voluntary interview",
                           at=T0 + timedelta(days=2))
        except BaseException as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    t = threading.Thread(target=slow_investigator)
    t.start()
    reader_done.wait(10)
    with store.session() as s:
        transition(s, s.get(Case, cid), "arrested", by="dc.fast", reason="warrant", at=T0 + timedelta(days=1))
    writer_done.set()
    t.join(20)
    assert len(errors) == 1 and isinstance(errors[0], CaseConflict), errors
    assert "nothing of yours was saved" in str(errors[0])
    with store.session() as s:  # the slow investigator reloads and repeats: both updates are kept
        case = find_case(s, "PER000000")
        assert case.status == "arrested"
        transition(s, case, "interviewed", by="dc.slow", reason="voluntary interview", at=T0 + timedelta(days=2))
    with store.session() as s:
        steps = s.scalars(select(Transition).where(Transition.case_id == cid).order_by(Transition.seq)).all()
        assert [(t.to_status, t.actor) for t in steps[-2:]] == [("arrested", "dc.fast"), ("interviewed", "dc.slow")]


def test_safeguarding_does_not_conflict_with_a_transition(store) -> None:
    """Safeguarding is its own row: recording it while the case moves on loses neither."""
    _overlapping(store)
    cid = _ready(store)
    first, second = store.sessions(), store.sessions()
    try:
        a, b = first.get(Case, cid), second.get(Case, cid)
        transition(first, a, "arrested", by="dc", reason="r", at=T0 + timedelta(days=1))
        first.commit()
        record_safeguarding(second, b, identified=2, safeguarded=2, agency="LA", by="dc.other")
        second.commit()
    finally:
        first.close()
        second.close()
    with store.session() as s:
        assert s.get(Case, cid).status == "arrested"
