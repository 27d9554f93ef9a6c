"""schemathesis against the API's OpenAPI schema: no generated request makes a server error.

Bounded: a few examples per operation (Hypothesis), over a small store with two persons, as
a user holding every national role (so requests get past the permission checks into the code).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from casekit import add_people, make_user
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from webkit import app_for

from ore.auth.policy import load_policy
from ore.auth.principal import principal_for
from ore.auth.sessions import create_token
from ore.auth.users import get_user

ROLES = ["analyst", "supervisor", "auditor", "admin"]
TOKEN: dict[str, str] = {}
CALLS: dict[int, int] = {}  # status -> count: the run made real requests


@pytest.fixture
def api_schema(sqlite_store, tmp_path: Path):
    add_people(sqlite_store, 2, force="MPS", band="P2")
    make_user(sqlite_store, "every.role", " ".join(ROLES))
    with sqlite_store.session() as s:
        user = get_user(s, "every.role")
        who = principal_for(user.username, ROLES, None, user_id=user.id)
        perms = sorted(frozenset().union(*(load_policy().roles[r].permissions for r in ROLES)))
        _, TOKEN["secret"] = create_token(s, who, "schemathesis", perms)
    app = app_for(sqlite_store, tmp_path / "ws")
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    app.state.ore.store.dispose()


def test_no_server_errors(api_schema) -> None:
    """Each operation in turn, a bounded number of generated requests each; any 5xx fails."""
    headers = {"Authorization": f"Bearer {TOKEN['secret']}"}
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
            CALLS[response.status_code] = CALLS.get(response.status_code, 0) + 1

        run()
    assert sum(CALLS.values()) >= len(operations), CALLS
