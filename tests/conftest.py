"""Fixtures for every test: ``store`` runs a case-store test on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from casekit import BACKENDS, Stores, pg_database

from ore.store import Store

# argon2id at its lowest cost in tests: the same code runs, in milliseconds (production keeps the defaults).
os.environ.setdefault("ORE_ARGON2_TIME_COST", "1")
os.environ.setdefault("ORE_ARGON2_MEMORY_KIB", "8")
os.environ.setdefault("ORE_ARGON2_PARALLELISM", "1")


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


@pytest.fixture
def sqlite_store(_stores: Stores) -> Store:
    """The SQLite store alone, for Hypothesis tests (a parametrised fixture cannot be re-entered per example)."""
    return _stores.get("sqlite", None)
