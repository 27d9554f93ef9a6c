"""/healthz answers while the process runs; /readyz only when the case store is at the head schema and the
workspace is writable. Neither needs a sign-in nor says anything about a person."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from webkit import app_for, client

from ore.store import Store, head_revision


@pytest.fixture
def app(store: Store, tmp_path: Path):
    app = app_for(store, tmp_path / "ws")
    yield app
    app.state.ore.store.dispose()


def test_healthz_answers_without_sign_in(app) -> None:
    r = client(app).get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.headers["cache-control"] == "no-store"


def test_readyz_ready_on_a_migrated_store_and_writable_workspace(app) -> None:
    r = client(app).get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"case_store": "ok", "workspace": "ok"}}


def test_probes_stay_out_of_the_api_schema(app) -> None:
    paths = client(app).get("/api/v1/openapi.json").json()["paths"]
    assert "/healthz" not in paths and "/readyz" not in paths


def test_readyz_not_ready_when_the_schema_is_behind(store: Store, tmp_path: Path) -> None:
    app = app_for(store, tmp_path / "ws")
    try:
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        r = client(app).get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["case_store"] == f"schema 0001, needs {head_revision()}"
        assert client(app).get("/healthz").status_code == 200  # up, not ready
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head_revision()})
        app.state.ore.store.dispose()


def test_readyz_not_ready_when_the_workspace_is_not_writable(app, monkeypatch: pytest.MonkeyPatch) -> None:
    # a full disk or a read-only mount (chmod would not stop root, who runs the test machine's tests)
    def full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ore.web.app.tempfile.mkstemp", full)
    r = client(app).get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"case_store": "ok", "workspace": "not writable (No space left on device)"}
