"""Fixtures for every test: ``store`` runs a case-store test on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from casekit import BACKENDS, Stores, pg_database

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
