"""Sealing on elimination, notices to recipients from the disclosure log, retention review and purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from casekit import T0, add_people, as_user
from sqlalchemy import func, insert, select

from ore.auth import AccessDenied
from ore.auth import approvals
from ore.cases import find_case, list_cases, transition, unseal
from ore.cases.notices import notify_recipients
from ore.cases.retention import purge, review
from ore.errors import OreError
from ore.store.access import AuditEntry, Disclosure
from ore.store.models import Case, Person


def eliminated_after_disclosure(store) -> str:
    (cid,) = add_people(store, 1, force="MPS")
    with store.session() as s:
        case = s.get(Case, cid)
        transition(s, case, "triaged", by="sgt", reason="ok", band="P2", at=T0)
        transition(s, case, "disseminated", by="sgt", reason="go", at=T0)
        s.execute(insert(Disclosure), [{"audit_seq": 1, "person_id": case.person_id, "person_ref": "PER000000",
                                        "package_ref": "PKG-1", "recipient": r, "kind": "dissemination", "at": T0}
                                       for r in ("MPS", "NCA")])
        transition(s, case, "eliminated", by="dc", reason="card fraud", ground="card_fraud_victim",
                   at=T0 + timedelta(days=2))
    return "PER000000"


def test_an_eliminated_person_leaves_the_lists_and_recipients_get_notices(store, tmp_path) -> None:
    ref = eliminated_after_disclosure(store)
    with store.session(as_user("supervisor", None)) as s:
        assert ref not in {c.person.person_ref for c in list_cases(s)}
    auditor = as_user("auditor", None)
    with store.session(auditor) as s:
        files = notify_recipients(s, ref, tmp_path)
    assert sorted(files) == ["MPS", "NCA"]
    text = files["NCA"].read_text()
    assert ref in text and "card fraud victim" in text and "Person 0" not in text  # no further personal data
    with store.session(as_user("investigator", "MPS")) as s, pytest.raises(AccessDenied):
        notify_recipients(s, ref, tmp_path)


def test_unsealing_needs_a_second_persons_approval(store) -> None:
    ref = eliminated_after_disclosure(store)
    admin, other = as_user("admin", None, "adm.one"), as_user("supervisor", None, "sup.two")
    with store.session(admin) as s, pytest.raises(approvals.ApprovalNeeded, match="two-person"):
        approvals.use(s, admin, "unseal", ref, None)
    with store.session(admin) as s:
        aid = approvals.request(s, admin, "unseal", ref, "identity confirmed after all").id
    with store.session(admin) as s, pytest.raises(OreError, match="second person"):
        approvals.grant(s, admin, aid)
    with store.session(other) as s:
        approvals.grant(s, other, aid)
    with store.session(admin) as s:
        approvals.use(s, admin, "unseal", ref, aid)
        unseal(s, find_case(s, ref), by="", reason="identity confirmed")
    with store.session(admin) as s, pytest.raises(approvals.ApprovalNeeded, match="used already"):
        approvals.use(s, admin, "unseal", ref, aid)


def test_only_a_user_who_could_act_may_ask_for_an_approval(store) -> None:
    ref = eliminated_after_disclosure(store)
    analyst = as_user("analyst", None, "an.one")
    with store.session(analyst) as s, pytest.raises(AccessDenied, match="cases.unseal"):
        approvals.request(s, analyst, "unseal", ref, "please")
    with store.session(analyst) as s, pytest.raises(AccessDenied, match="cases.disseminate"):
        approvals.request(s, analyst, "disseminate_p1", "MPS", "3 P1 persons")
    with store.session() as s:
        assert approvals.pending(s) == []


def test_retention_review_and_purge_erase_personal_data_and_log_it_without_the_data(store) -> None:
    ref = eliminated_after_disclosure(store)
    admin = as_user("admin", None, "adm.one")
    with store.session(admin) as s:
        assert review(s, now=T0 + timedelta(days=300)) == []
        with pytest.raises(OreError, match="not due for review"):
            purge(s, find_case(s, ref), reason="r", now=T0 + timedelta(days=300))
    later = T0 + timedelta(days=400)
    with store.session(admin) as s:
        assert [d.person_ref for d in review(s, now=later)] == [ref]
        purge(s, find_case(s, ref), reason="retention period over", now=later)
    with store.session() as s:
        p = s.scalar(select(Person).where(Person.person_ref == ref))
        assert (p.display_name, p.erased_at is not None) == (None, True)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "retention.purge"))
        assert entry.category == "erasure" and "Person 0" not in entry.detail and ref in entry.objects
        assert s.scalar(select(Case).where(Case.person_id == p.id)).eliminated_at is not None  # counts stay
    with store.session(as_user("supervisor", None)) as s, pytest.raises(AccessDenied):
        review(s)


def test_a_re_triage_brings_back_nothing_of_an_erased_person(store, tmp_path) -> None:
    from datetime import UTC, datetime

    from casekit import triage_scenario

    from ore.cases import import_triage
    from ore.store.models import HoldingLink, Record

    t = triage_scenario(tmp_path, people=1200, subscribers=80, seed=43)
    import_triage(store, t.ws, t.out, actor="analyst")
    with store.session() as s:
        person = s.scalars(select(Person).where(Person.record_count > 1).order_by(Person.person_ref)).first()
        ref, pid = person.person_ref, person.id
    with store.session(as_user("admin", None, "adm.one")) as s:
        purge(s, find_case(s, ref), reason="retention period over", now=datetime(2300, 1, 1, tzinfo=UTC))
    summary = import_triage(store, t.ws, t.out, actor="analyst")  # the same triage, imported again
    with store.session() as s:
        p = s.get(Person, pid)
        assert (p.display_name, p.withdrawn_at) == (None, None)
        assert s.scalar(select(func.count()).select_from(Record).where(Record.person_id == pid)) == 0
        assert s.scalar(select(func.count()).select_from(HoldingLink).where(HoldingLink.person_id == pid)) == 0
    assert summary.counts["erased_kept_out"] == 1
