"""The generated access matrix of the API: every operation x every role x own / other force, on both backends.

Each cell is a fresh store holding two MPS persons: PER000000 disseminated to MPS, PER000001
with its band confirmed (ready to disseminate). The caller is a user of MPS ("own") or GMP
("other") with an API token holding every permission of the role. The expectation is written
out here, not read from roles.yaml (as in tests/auth/test_cli_matrix.py): a policy change that
widens access fails this test until it is meant. Another force's person answers 404 with the
same message as a missing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from casekit import T0, add_people
from webkit import ROLES, app_for, client, token_for

from ore.cases import transition
from ore.store import Store
from ore.store.models import Case

REF, READY = "PER000000", "PER000001"
P = f"/api/v1/persons/{REF}"
# operation -> (method, path, json body)
OPERATIONS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "queue": ("GET", "/api/v1/persons", None),
    "person": ("GET", P, None),
    "graph": ("GET", f"{P}/graph", None),
    "accept": ("POST", f"{P}/steps", {"to": "accepted", "reason": "r"}),
    "eliminate": ("POST", f"{P}/steps", {"to": "eliminated", "reason": "card fraud", "ground": "card_fraud_victim"}),
    "safeguard": ("POST", f"{P}/safeguarding", {"identified": 1, "safeguarded": 1, "agency": "LA"}),
    "seal": ("POST", f"{P}/seal", {"reason": "r"}),
    "disseminate": ("POST", "/api/v1/disseminations", {"force": "MPS", "persons": [READY], "reason": "go"}),
    "approvals list": ("GET", "/api/v1/approvals", None),
    "approvals request": ("POST", "/api/v1/approvals", {"action": "disseminate_p1", "object": "MPS", "reason": "r"}),
    "dashboard": ("GET", "/api/v1/dashboard", None),
    "funnel": ("GET", "/api/v1/funnel?by=force", None),
    "overdue": ("GET", "/api/v1/overdue", None),
    "imports": ("GET", "/api/v1/imports", None),
    "quarantine": ("GET", "/api/v1/quarantine", None),
    "audit search": ("GET", f"/api/v1/audit?person={REF}", None),
    "audit verify": ("GET", "/api/v1/audit/verify", None),
    "users": ("GET", "/api/v1/users", None),
    "users add": ("POST", "/api/v1/users", {"name": "new.user", "roles": ["analyst"]}),
    "me": ("GET", "/api/v1/me", None),
    "alerts": ("GET", "/api/v1/alerts", None),
}
A, D, H = "allowed", "denied", "hidden"
_ALL = dict.fromkeys(OPERATIONS, D) | {"me": A}
READS = {"queue": A, "person": A, "graph": A, "dashboard": A, "funnel": A, "overdue": A}
EXPECTED: dict[str, dict[str, str]] = {
    "analyst": _ALL | READS | {"imports": A, "quarantine": A, "alerts": A},
    "supervisor": _ALL | READS | {"approvals request": A, "accept": A, "eliminate": A, "safeguard": A, "seal": A, "disseminate": A,
                                  "approvals list": A, "imports": A, "quarantine": A, "alerts": A},
    "investigator": _ALL | READS | {"accept": A, "eliminate": A, "safeguard": A},
    "offender_manager": _ALL | {"accept": H, "eliminate": H, "safeguard": H, "seal": H, "alerts": A},
    "auditor": _ALL | READS | {"audit search": A, "audit verify": A, "alerts": A},
    "admin": _ALL | READS | {"approvals list": A, "audit verify": A, "users": A, "users add": A},
}
OWN_FORCE_ROLES = {"investigator", "offender_manager"}
CASE_OPERATIONS = {"person", "graph", "accept", "eliminate", "safeguard", "seal"}


def expected(role: str, where: str, op: str) -> str:
    e = EXPECTED[role][op]
    if e == D and op in ("person", "graph"):
        return D  # refused before any person is looked up
    if where == "other" and role in OWN_FORCE_ROLES and op in CASE_OPERATIONS:
        return H  # another force's person does not exist for them
    return e


def outcome(r: Any) -> str:
    if r.status_code == 200:
        return A
    if r.status_code == 404 and r.json()["detail"].startswith(f"no case for person {REF}"):
        return H
    if r.status_code == 403 and "needs the permission" in r.json()["detail"]:
        return D
    raise AssertionError(f"unexpected {r.status_code}: {r.text}")


def _world(store: Store) -> None:
    add_people(store, 2, force="MPS", band="P2")
    with store.session() as s:
        first, second = (s.scalars(__import__("sqlalchemy").select(Case).order_by(Case.id)).all())
        transition(s, first, "triaged", by="sgt", reason="ok", band="P2", at=T0)
        transition(s, first, "disseminated", by="sgt", reason="go", at=T0)
        transition(s, second, "triaged", by="sgt", reason="ok", band="P2", at=T0)


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_api_matrix(store: Store, tmp_path: Path, role: str, where: str) -> None:
    """Every operation for one role and force, each on a fresh world (an allowed step changes it)."""
    force = "MPS" if where == "own" else "GMP"
    token = token_for(store, f"{role}.{force}".lower(), role, force)
    app = app_for(store, tmp_path / "ws")
    try:
        c = client(app)
        headers = {"Authorization": f"Bearer {token}"}
        wrong = []
        for op, (method, path, body) in OPERATIONS.items():
            _reset(store)
            r = c.request(method, path, json=body, headers=headers)
            got, want = outcome(r), expected(role, where, op)
            if got != want:
                wrong.append((op, got, want, r.text[:200]))
            if op == "queue" and got == A:
                visible = REF in r.text
                if visible != (where == "own" or role not in OWN_FORCE_ROLES):
                    wrong.append((op, "visible" if visible else "not visible", "scoping", r.text[:200]))
        assert not wrong, wrong
    finally:
        app.state.ore.store.dispose()


def _reset(store: Store) -> None:
    """Back to the two persons (users and tokens stay): delete case rows, then add them again."""
    from sqlalchemy import delete

    from ore.store.access import Approval, Disclosure
    from ore.store.models import Import, Operation, Package, Person, Record, Safeguarding, Transition

    with store.engine.begin() as conn:
        for t in (Disclosure, Approval, Safeguarding, Transition, Case, Record, Person, Import, Package, Operation):
            conn.execute(delete(t.__table__))
    _world(store)


def test_another_forces_person_answers_as_a_missing_one(store: Store, tmp_path: Path) -> None:
    token = token_for(store, "dc.gmp", "investigator", "GMP")
    _reset(store)
    app = app_for(store, tmp_path / "ws")
    try:
        c = client(app)
        h = {"Authorization": f"Bearer {token}"}
        hidden = c.get(P, headers=h)
        missing = c.get("/api/v1/persons/PER999999", headers=h)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace(REF, "X") == missing.json()["detail"].replace("PER999999", "X")
    finally:
        app.state.ore.store.dispose()


def test_no_or_bad_token_is_401(store: Store, tmp_path: Path) -> None:
    app = app_for(store, tmp_path / "ws")
    try:
        c = client(app)
        assert c.get("/api/v1/persons").status_code == 401
        r = c.get("/api/v1/persons", headers={"Authorization": "Bearer ore_nope"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    finally:
        app.state.ore.store.dispose()


def test_every_api_operation_is_in_the_matrix() -> None:
    from ore.web.api import router

    ops = {(m, r.path) for r in router.routes for m in r.methods}  # type: ignore[attr-defined]
    covered = {(m, p.split("?")[0].replace(REF, "{ref}")) for m, p, _ in OPERATIONS.values()}
    covered = {(m, p.replace("/api/v1/persons/{ref}", "/api/v1/persons/{ref}")) for m, p in covered}
    rest = {(m, p) for m, p in ops if (m, p) not in covered}
    # imports (upload, one job) and approvals grant and users changes are covered by test_pages/test_e2e
    assert rest <= {("POST", "/api/v1/imports"), ("GET", "/api/v1/imports/{job_id}"),
                    ("POST", "/api/v1/approvals/{approval_id}/grant"), ("POST", "/api/v1/users/{name}/{what}")}, rest
