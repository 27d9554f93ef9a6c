"""The watch tests' operation: one triaged synthetic scenario per test process (the store is emptied per test)."""

from __future__ import annotations

import pytest
from casekit import Triaged, triage_scenario


@pytest.fixture(scope="session")
def triaged(tmp_path_factory: pytest.TempPathFactory) -> Triaged:
    return triage_scenario(tmp_path_factory.mktemp("watch"), people=1500, subscribers=120, seed=31)
