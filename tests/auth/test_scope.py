"""Force scoping in the store: every role x own force / other force, and PostgreSQL's row-level security."""

from __future__ import annotations

import pytest
from casekit import T0, add_people, as_user
from sqlalchemy import text

from ore.auth import AccessDenied
from ore.cases import find_case, list_cases, record_safeguarding, seal, show_case, transition, unseal
from ore.errors import OreError
from ore.store.models import Case

ROLES = ("analyst", "supervisor", "investigator", "offender_manager", "auditor", "admin")


def disseminated(store) -> dict[str, str]:
    """PER000000 disseminated to MPS, PER000100 to GMP, PER000200 to MPS and sealed."""
    refs = {}
    for start, force in ((0, "MPS"), (100, "GMP"), (200, "MPS")):
        (cid,) = add_people(store, 1, force=force, start=start)
        with store.session() as s:
            case = s.get(Case, cid)
            transition(s, case, "triaged", by="sgt", reason="ok", band="P2", at=T0)
            transition(s, case, "disseminated", by="sgt", reason="go", at=T0)
            refs[force if start < 200 else "sealed"] = case.person.person_ref
            if start == 200:
                seal(s, case, by="sgt", reason="wrongly identified", at=T0)
    return refs


def attempt(store, who, op: str, ref: str) -> str:
    """allowed | denied (permission) | hidden (answers as a missing case)."""
    try:
        with store.session(who) as s:
            if op == "show":
                show_case(s, ref)
            elif op == "list":
                if ref not in {c.person.person_ref for c in list_cases(s)}:
                    return "hidden"
            elif op == "accept":
                transition(s, find_case(s, ref), "accepted", by="", reason="accepted", at=T0)
            elif op == "safeguard":
                record_safeguarding(s, find_case(s, ref), identified=1, safeguarded=1, agency="LA", by="")
            elif op == "seal":
                seal(s, find_case(s, ref), by="", reason="r")
            elif op == "unseal":
                unseal(s, find_case(s, ref), by="", reason="r")
    except AccessDenied:
        return "denied"
    except OreError as e:
        if f"no case for person {ref}" in str(e):
            return "hidden"
        raise
    return "allowed"


# The matrix: (role, operation) -> result on an MPS case for a user of MPS ("own") and of GMP ("other").
# Own-force roles see only their force's cases; national roles see all forces; sealed persons only
# auditors and admins.
EXPECTED = {
    "analyst": {"show": "allowed", "list": "allowed", "accept": "denied", "safeguard": "denied", "seal": "denied"},
    "supervisor": {"show": "allowed", "list": "allowed", "accept": "allowed", "safeguard": "allowed",
                   "seal": "allowed"},
    "investigator": {"show": "allowed", "list": "allowed", "accept": "allowed", "safeguard": "allowed",
                     "seal": "denied"},
    "offender_manager": {"show": "hidden", "list": "hidden", "accept": "hidden", "safeguard": "hidden",
                         "seal": "hidden"},  # no cases.read: no case exists for them
    "auditor": {"show": "allowed", "list": "allowed", "accept": "denied", "safeguard": "denied", "seal": "denied"},
    "admin": {"show": "allowed", "list": "allowed", "accept": "denied", "safeguard": "denied", "seal": "denied"},
}
OWN_FORCE = {"investigator", "offender_manager"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "other"])
def test_every_role_on_its_own_and_another_forces_case(store, role: str, where: str) -> None:
    refs = disseminated(store)
    who = as_user(role, "MPS" if where == "own" else "GMP")
    for op, expected in EXPECTED[role].items():
        if role in OWN_FORCE and where == "other":
            expected = "hidden"  # another force's case answers as a missing one, whatever the permission
        assert attempt(store, who, op, refs["MPS"]) == expected, (role, where, op)


@pytest.mark.parametrize("role", ROLES)
def test_sealed_persons_are_seen_only_by_auditors_and_admins(store, role: str) -> None:
    refs = disseminated(store)
    who = as_user(role, "MPS")
    seen = attempt(store, who, "list", refs["sealed"]) == "allowed"
    assert seen == (role in ("auditor", "admin"))
    assert attempt(store, who, "unseal", refs["sealed"]) == (
        "allowed" if role == "admin" else "denied" if role == "auditor" else "hidden")


def test_a_missing_case_and_another_forces_case_give_the_same_error(store) -> None:
    refs = disseminated(store)
    msgs = []
    for ref in (refs["GMP"], "PER999999"):
        with pytest.raises(OreError) as e, store.session(as_user("investigator", "MPS")) as s:
            find_case(s, ref)
        msgs.append(str(e.value).replace(ref, "REF"))
    assert msgs[0] == msgs[1]


def test_the_overriding_supervisor_must_be_a_real_other_supervisor(store) -> None:
    from casekit import make_user

    make_user(store, "insp.moss", "supervisor")
    make_user(store, "dc.kay", "investigator", "MPS")
    (cid,) = add_people(store, 1, grade="C")
    with store.session() as s:
        case = s.get(Case, cid)
        for to, kw in (("triaged", {"band": "P2"}), ("disseminated", {}), ("accepted", {}),
                       ("under_investigation", {})):
            transition(s, case, to, by="sgt", reason="r", at=T0, **kw)
        ref = case.person.person_ref
    dc = as_user("investigator", "MPS", "dc.kay")
    for override_by, why in (("dc.kay", "cannot override for themself"), ("nobody", "not one"),
                             ("dc.kay2", "not one")):
        with pytest.raises(OreError, match=why), store.session(dc) as s:
            transition(s, find_case(s, ref), "arrested", by="", reason="warrant", at=T0,
                       override_by=override_by, override_reason="identity confirmed")
    with store.session(dc) as s:
        transition(s, find_case(s, ref), "arrested", by="", reason="warrant", at=T0, override_by="insp.moss",
                   override_reason="identity confirmed by the bank")


def test_postgresql_row_level_security_is_a_second_wall(store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    refs = disseminated(store)

    def raw(who, sql: str) -> list:
        with store.session(who) as s:  # plain SQL: no case_query, no scope but the database's
            return [r[0] for r in s.execute(text(sql))]

    mps, gmp = as_user("investigator", "MPS"), as_user("investigator", "GMP")
    assert raw(mps, "SELECT force_code FROM cases ORDER BY 1") == ["MPS"]  # not GMP's, not the sealed one
    assert raw(gmp, "SELECT force_code FROM cases") == ["GMP"]
    assert raw(mps, "SELECT person_ref FROM persons") == [refs["MPS"]]
    assert raw(as_user("analyst", None), "SELECT count(*) FROM cases") == [2]  # every force, not the sealed
    assert raw(as_user("auditor", None), "SELECT count(*) FROM cases") == [3]
    assert raw(as_user("offender_manager", "GMP"), "SELECT count(*) FROM transitions") == [2]
    with store.session(mps) as s:  # writing another force's rows touches nothing
        assert s.execute(text("UPDATE cases SET status = 'accepted' WHERE force_code = 'GMP'")).rowcount == 0
    with pytest.raises(Exception, match="row-level security"), store.session(mps) as s:
        s.execute(text("UPDATE cases SET force_code = 'GMP' WHERE force_code = 'MPS'"))  # moving a case out
    with store.session() as s:  # a session with no settings at all (outside ore) sees nothing
        s.execute(text("SELECT set_config('ore.force', '', true)"))
        assert s.execute(text("SELECT count(*) FROM cases")).scalar() == 0
