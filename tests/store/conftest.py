"""The ``store`` fixture (from tests/cases/casekit.py): every store test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cases"))  # the shared casekit

from casekit import BACKENDS, Stores, pg_database  # noqa: E402

from ore.store import Store


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    yield from pg_database()


@pytest.fixture(scope="session")
def _stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    stores = Stores(tmp_path_factory.mktemp("case-store"))
    yield stores
    stores.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, _stores: Stores) -> Store:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return _stores.get(request.param, url)
