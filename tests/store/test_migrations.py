"""The store's schema: built by the shipped migrations from empty, on both backends, matching the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from ore.errors import OreError
from ore.store import CaseConflict, current_revision, head_revision, open_store
from ore.store.engine import _alembic_config, normalise_url
from ore.store.models import Base


def test_migrations_build_the_schema_from_empty(store) -> None:
    from alembic import command

    with store.engine.begin() as conn:  # back to nothing, then up again through the migrations
        command.downgrade(_alembic_config(conn), "base")
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(store.engine) is None
    again = open_store(store.engine.url.render_as_string(hide_password=False))
    try:
        assert current_revision(again.engine) == head_revision()
        tables = set(inspect(again.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        with again.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diffs == [], f"the models and the migrations disagree: {diffs}"
    finally:
        again.dispose()


def test_reopening_a_migrated_store_changes_nothing(store) -> None:
    before = current_revision(store.engine)
    open_store(store.engine.url.render_as_string(hide_password=False)).dispose()
    assert current_revision(store.engine) == before == head_revision()


def test_sqlite_every_connection_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path / 'c.sqlite'}")
    conns = [s.engine.connect() for _ in range(3)]  # several pooled connections, each set up on connect
    try:
        for conn in conns:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        for conn in conns:
            conn.close()
        s.dispose()


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("postgresql+psycopg://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


def test_an_unreachable_store_is_one_clear_error() -> None:
    with pytest.raises(OreError, match="cannot open the case store at postgresql"):
        open_store("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")


def test_workspace_store_is_sqlite_in_the_workspace(tmp_path: Path, monkeypatch) -> None:
    from ore.store import store_for
    from ore.workspace import Workspace

    monkeypatch.delenv("ORE_DATABASE_URL", raising=False)
    ws = Workspace.open(tmp_path / "ws")
    s = store_for(ws)
    try:
        assert s.dialect == "sqlite"
        assert (tmp_path / "ws" / "cases.sqlite").exists()
    finally:
        s.dispose()


def test_case_conflict_is_a_user_error() -> None:
    assert issubclass(CaseConflict, OreError)
