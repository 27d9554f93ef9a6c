"""The audit chain: verify names the first bad entry for each kind of tampering; checkpoints; fail closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from casekit import T0, add_people, as_user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from ore.audit import check_checkpoint, make_checkpoint, record, search, verify_chain
from ore.auth import AccessDenied
from ore.cases import find_case, transition
from ore.report.package_sign import Ed25519PrivateKey
from ore.store.access import AuditEntry
from ore.store.models import Case


def write(store, n: int) -> None:
    with store.session() as s:
        for i in range(n):
            record(s, user=f"user{i % 3}", action="cases.show", category="consultation", objects=[f"PER{i:06d}"],
                   purpose="investigation", detail={"i": i}, at=T0 + timedelta(seconds=i))


def owner_sql(store, sql: str, **params) -> None:
    """Tamper as the database owner would (outside ore, bypassing every grant)."""
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_an_untouched_chain_verifies(store) -> None:
    write(store, 12)
    with store.session() as s:
        v = verify_chain(s)
    assert v.ok and v.entries == v.last_seq == 12


def test_entries_carry_millisecond_utc_times_and_the_previous_hash(store) -> None:
    write(store, 3)
    with store.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert rows[0].prev_hash == "0" * 64 and rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    assert all(r.at.tzinfo is not None and r.at.microsecond % 1000 == 0 for r in rows)


@pytest.mark.parametrize("column", ["username", "action", "objects", "outcome", "detail"])
def test_a_flipped_byte_names_that_entry(store, column: str) -> None:
    write(store, 10)
    owner_sql(store, f"UPDATE audit_log SET {column} = {column} || 'x' WHERE seq = 6")
    with store.session() as s:
        v = verify_chain(s)
    assert v.first_bad == 6 and "does not match its hash" in v.problem


def test_a_deleted_entry_is_named(store) -> None:
    write(store, 10)
    owner_sql(store, "DELETE FROM audit_log WHERE seq = 4")
    with store.session() as s:
        v = verify_chain(s)
    assert v.first_bad == 4 and "entry 4 is missing" in v.problem


def test_a_deleted_entry_renumbered_to_hide_the_gap_is_named(store) -> None:
    write(store, 10)
    owner_sql(store, "DELETE FROM audit_log WHERE seq = 4")
    for seq in range(5, 11):
        owner_sql(store, "UPDATE audit_log SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    with store.session() as s:
        v = verify_chain(s)
    assert v.first_bad == 4


def test_a_truncated_tail_is_named(store) -> None:
    write(store, 10)
    owner_sql(store, "DELETE FROM audit_log WHERE seq > 7")
    with store.session() as s:
        v = verify_chain(s)
    assert v.first_bad == 8 and "cut short after entry 7" in v.problem


def test_reordered_entries_are_named(store) -> None:
    write(store, 10)
    owner_sql(store, "UPDATE audit_log SET seq = 1000 WHERE seq = 5")
    owner_sql(store, "UPDATE audit_log SET seq = 5 WHERE seq = 6")
    owner_sql(store, "UPDATE audit_log SET seq = 6 WHERE seq = 1000")
    with store.session() as s:
        v = verify_chain(s)
    assert v.first_bad == 5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 8), data=st.data())
def test_any_single_changed_entry_is_the_first_bad_one(sqlite_store, n: int, data: st.DataObject) -> None:
    from casekit import clear

    clear(sqlite_store)  # the fixture is shared by the examples: each starts from an empty log
    write(sqlite_store, n)
    victim = data.draw(st.integers(1, n))
    owner_sql(sqlite_store, "UPDATE audit_log SET purpose = 'other' WHERE seq = :s", s=victim)
    with sqlite_store.session() as s:
        assert verify_chain(s).first_bad == victim


def test_a_checkpoint_detects_a_restored_older_copy(store) -> None:
    key = Ed25519PrivateKey.generate()
    write(store, 5)
    with store.session() as s:
        cp = make_checkpoint(s, key)
        assert check_checkpoint(s, cp, key.public_key()).ok
    write(store, 3)
    with store.session() as s:
        assert check_checkpoint(s, cp, key.public_key()).ok  # the log grew: still holds the checkpoint
        late = make_checkpoint(s, key)
    # "restore" the copy of five entries: a consistent chain, head and all, only older
    owner_sql(store, "DELETE FROM audit_log WHERE seq > 5")
    owner_sql(store, "UPDATE audit_head SET seq = 5, hash = (SELECT hash FROM audit_log WHERE seq = 5)")
    with store.session() as s:
        assert verify_chain(s).ok
        c = check_checkpoint(s, late, key.public_key())
    assert not c.ok and "ends at entry 5" in c.message and "records entry 8" in c.message
    forged = {**late, "checkpoint": {**late["checkpoint"], "seq": 5}}
    with store.session() as s:
        assert "signature" in check_checkpoint(s, forged, key.public_key()).message


def test_an_action_whose_audit_entry_cannot_be_written_does_not_happen(store) -> None:
    (cid,) = add_people(store, 1)
    if store.dialect == "postgresql":
        owner_sql(store, "REVOKE INSERT ON audit_log FROM ore_app")
        undo = "GRANT INSERT ON audit_log TO ore_app"
    else:
        owner_sql(store, "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'down'); END")
        undo = "DROP TRIGGER audit_down"
    try:
        with pytest.raises(Exception), store.session() as s:
            transition(s, s.get(Case, cid), "triaged", by="sgt", reason="ok", band="P1", at=T0)
    finally:
        owner_sql(store, undo)
    with store.session() as s:
        case = s.get(Case, cid)
        assert (case.status, case.event_count) == ("identified", 0)


def test_the_application_role_cannot_rewrite_the_log(store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("grants exist on PostgreSQL only; SQLite relies on the chain")
    write(store, 2)
    with pytest.raises(Exception, match="permission denied"), store.session() as s:
        s.execute(text("UPDATE audit_log SET outcome = 'ok' WHERE seq = 1"))
    with pytest.raises(Exception, match="permission denied"), store.session() as s:
        s.execute(text("DELETE FROM audit_log"))


def test_search_is_for_auditors_and_is_itself_logged(store) -> None:
    add_people(store, 3)
    with store.session(as_user("investigator", "MPS")) as s:
        with pytest.raises(AccessDenied):
            search(s, as_user("investigator", "MPS"), person="PER000001")
    with store.session(as_user("analyst", None, "an.one")) as s:
        find_case(s, "PER000001")
        from ore.cases import show_case
        show_case(s, "PER000001")
    auditor = as_user("auditor", None, "aud.one")
    with store.session(auditor) as s:
        found = search(s, auditor, person="PER000001")
        # the view, and this search itself (it names the person)
        assert [(e.username, e.action) for e in found] == [("an.one", "cases.show"), ("aud.one", "audit.search")]
        assert search(s, auditor, user="an.one", since=T0)[0].action == "cases.show"
    with store.session() as s:
        last = s.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert (last.username, last.action, last.category) == ("aud.one", "audit.search", "consultation")
        assert s.scalar(select(func.count(AuditEntry.seq)).where(AuditEntry.action == "audit.search")) == 2
