"""The generated access matrix of the command line: every case command x every role x own / other force.

Each cell runs the real command (CliRunner, an API token per role) on a fresh copy of one
small case store: an MPS person disseminated to MPS, signed in as a user of MPS ("own")
or of GMP ("other"). The expectation is written out here, not read from roles.yaml, so a
change to the policy that widens access fails this test until it is meant.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from casekit import T0, add_people
from typer.testing import CliRunner

from ore.auth import SYSTEM
from ore.auth.policy import load_policy
from ore.auth.principal import principal_for
from ore.auth.sessions import create_token
from ore.auth.users import add_user
from ore.cases import transition
from ore.cli import app
from ore.store import open_store
from ore.store.models import Case

ROLES = ("analyst", "supervisor", "investigator", "offender_manager", "auditor", "admin")
REF = "PER000000"
# operation -> the command line (after `ore -w WS`)
OPERATIONS: dict[str, list[str]] = {
    "cases list": ["cases", "list"],
    "cases show": ["cases", "show", REF],
    "cases overdue": ["cases", "overdue", "--at", "2003-06-01T00:00"],
    "transition accepted": ["cases", "transition", REF, "accepted", "--reason", "r"],
    "transition eliminated": ["cases", "transition", REF, "eliminated", "--reason", "card fraud"],
    "cases safeguard": ["cases", "safeguard", REF, "--identified", "1", "--safeguarded", "1", "--agency", "LA"],
    "cases seal": ["cases", "seal", REF, "--reason", "r"],
    "report funnel": ["report", "funnel"],
    "audit search": ["audit", "search", "--person", REF],
    "audit verify": ["audit", "verify"],
    "users list": ["users", "list"],
    "retention review": ["retention", "review"],
}
A, D, H = "allowed", "denied", "hidden"  # hidden: answers "no case for person", as a missing one would
# (role, where) -> operation -> expected
EXPECTED: dict[str, dict[str, str]] = {
    "analyst": {"cases list": A, "cases show": A, "cases overdue": A, "transition accepted": D,
                "transition eliminated": D, "cases safeguard": D, "cases seal": D, "report funnel": A,
                "audit search": D, "audit verify": D, "users list": D, "retention review": D},
    "supervisor": {"cases list": A, "cases show": A, "cases overdue": A, "transition accepted": A,
                   "transition eliminated": A, "cases safeguard": A, "cases seal": A, "report funnel": A,
                   "audit search": D, "audit verify": D, "users list": D, "retention review": D},
    "investigator": {"cases list": A, "cases show": A, "cases overdue": A, "transition accepted": A,
                     "transition eliminated": A, "cases safeguard": A, "cases seal": D, "report funnel": A,
                     "audit search": D, "audit verify": D, "users list": D, "retention review": D},
    "offender_manager": {"cases list": D, "cases show": D, "cases overdue": D, "transition accepted": H,
                         "transition eliminated": H, "cases safeguard": H, "cases seal": H, "report funnel": D,
                         "audit search": D, "audit verify": D, "users list": D, "retention review": D},
    "auditor": {"cases list": A, "cases show": A, "cases overdue": A, "transition accepted": D,
                "transition eliminated": D, "cases safeguard": D, "cases seal": D, "report funnel": A,
                "audit search": A, "audit verify": A, "users list": D, "retention review": A},
    "admin": {"cases list": A, "cases show": A, "cases overdue": A, "transition accepted": D,
              "transition eliminated": D, "cases safeguard": D, "cases seal": D, "report funnel": A,
              "audit search": D, "audit verify": A, "users list": A, "retention review": A},
}
OWN_FORCE_ROLES = {"investigator", "offender_manager"}
CASE_COMMANDS = {"cases show", "transition accepted", "transition eliminated", "cases safeguard", "cases seal"}


def expected(role: str, where: str, op: str) -> str:
    e = EXPECTED[role][op]
    if op == "cases show" and e == D:
        return D  # refused before any case is looked up
    if where == "other" and role in OWN_FORCE_ROLES and op in CASE_COMMANDS:
        return H  # another force's case does not exist for them
    return e


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], str]]:
    """A workspace whose store holds one disseminated MPS case, and an API token per role and force."""
    ws = tmp_path_factory.mktemp("matrix") / "ws"
    ws.mkdir()
    store = open_store(f"sqlite:///{ws / 'cases.sqlite'}")
    (cid,) = add_people(store, 1, force="MPS", band="P2")
    with store.session() as s:
        case = s.get(Case, cid)
        transition(s, case, "triaged", by="sgt", reason="ok", band="P2", at=T0)
        transition(s, case, "disseminated", by="sgt", reason="go", at=T0)
    tokens = {}
    policy = load_policy()
    for role in ROLES:
        for force in ("MPS", "GMP"):
            name = f"{role}.{force}".lower()
            with store.session() as s:
                user = add_user(s, SYSTEM, name, "correct horse battery", role, force, must_change=False)
                who = principal_for(name, [role], force, user_id=user.id)
                _, tokens[(role, force)] = create_token(s, who, "matrix", sorted(policy.roles[role].permissions))
    store.dispose()
    return ws, tokens


def outcome(result) -> str:
    if result.exit_code == 0:
        return A
    if f"no case for person {REF}" in result.output:
        return H
    if "may not" in result.output and "needs the permission" in result.output:
        return D
    raise AssertionError(f"unexpected result {result.exit_code}: {result.output}")


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", list(OPERATIONS))
def test_matrix(template, tmp_path: Path, op: str, role: str, where: str) -> None:
    src, tokens = template
    ws = tmp_path / "ws"
    shutil.copytree(src, ws)
    force = "MPS" if where == "own" else "GMP"
    result = CliRunner().invoke(app, ["-w", str(ws), *OPERATIONS[op]], env={"ORE_TOKEN": tokens[(role, force)],
                                                                           "ORE_USER": None})
    got = outcome(result)
    assert got == expected(role, where, op), (op, role, where, result.output)
    if op == "cases list" and got == A:
        visible = REF in result.output
        assert visible == (where == "own" or role not in OWN_FORCE_ROLES), result.output


def test_every_case_command_is_in_the_matrix() -> None:
    from typer.main import get_command

    cases = get_command(app).commands["cases"].commands  # type: ignore[attr-defined]
    covered = {argv[1] for argv in OPERATIONS.values() if argv[0] == "cases"}
    assert set(cases) - covered <= {"import", "rules", "unseal"}, "a new case command needs a row in the matrix"
