"""ore doctor: each failure an operator can meet is found and says what to do; a sound deployment passes;
the doctor changes nothing. Through its function, and through its command on a small Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from casekit import T0
from sqlalchemy import text
from typer.testing import CliRunner

from ore import __version__
from ore.audit import record
from ore.config import get_settings
from ore.ops.cli import doctor
from ore.ops.doctor import run_checks, version_text
from ore.store import Store, head_revision, store_for
from ore.workspace import Workspace


def workspace(root: Path, store: Store | None = None) -> Workspace:
    """A workspace with a card key and an audit entry; its case store is ``store`` (else SQLite inside it)."""
    url = store.engine.url.render_as_string(hide_password=False) if store is not None else None
    ws = Workspace.open(root, get_settings(database_url=url))
    ws.card_key()
    s = store or store_for(ws)
    with s.session() as session:
        record(session, user="ops", action="test", category="collection", purpose="triage", at=T0)
    if store is None:
        s.dispose()
    return ws


def owner_sql(ws: Workspace, sql: str, **params: object) -> None:
    from ore.store.engine import make_engine

    engine = make_engine(ws.database_url)
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


@pytest.fixture
def ws(store: Store, tmp_path: Path) -> Workspace:
    """A sound deployment, on SQLite and on PostgreSQL."""
    return workspace(tmp_path / "ws", store)


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_a_sound_deployment_passes(ws: Workspace) -> None:
    r = run_checks(ws, min_free_gib=0, warn_free_gib=0)
    assert r.ok, r.to_dict()
    assert statuses(r) == {"workspace": "ok", "case store": "ok", "audit chain": "ok", "card key": "ok",
                           "free disk": "ok", "case store integrity": "ok", "bulk tables": "ok",
                           "unfinished run": "ok", "leftover files": "ok"}
    assert f"schema {head_revision()} (head)" in r.check("case store").detail
    assert "card-v1.key" in r.check("card key").detail
    assert r.check("audit chain").detail.startswith("1 entries")
    assert r.versions["ore"] == __version__ and r.versions["schema head"] == head_revision()
    assert {"duckdb", "splink", "sqlalchemy", "alembic"} <= set(r.versions)


def test_a_key_readable_by_others_fails_and_says_chmod(ws: Workspace) -> None:
    (ws.root / "keys" / "card-v1.key").chmod(0o644)
    r = run_checks(ws, min_free_gib=0)
    c = r.check("card key")
    assert not r.ok and c.status == "fail" and "card-v1.key (0644)" in c.detail and "chmod 600" in c.fix


def test_a_damaged_key_fails(ws: Workspace) -> None:
    (ws.root / "keys" / "card-v2.key").write_bytes(b"short")
    (ws.root / "keys" / "card-v2.key").chmod(0o600)
    c = [c for c in run_checks(ws, min_free_gib=0).checks if c.name == "card key"]
    assert [x.status for x in c] == ["fail"] and "card-v2.key (5 bytes)" in c[0].detail


def test_a_rotation_left_half_done_warns_and_says_how_to_finish(ws: Workspace) -> None:
    assert "key rotation" not in statuses(run_checks(ws, min_free_gib=0))
    ws.add_card_key()  # as `ore keys rotate` does
    r = run_checks(ws, min_free_gib=0, warn_free_gib=0)
    c = r.check("key rotation")
    assert c.status == "warn" and "under key v1" in c.detail and "v1 and v2" in c.detail
    assert "ore keys rekey" in c.fix and r.ok  # a warning: the deployment still works


def test_data_without_its_key_fails_but_a_new_workspace_only_warns(tmp_path: Path) -> None:
    new = Workspace.open(tmp_path / "new")
    store_for(new).dispose()
    assert run_checks(new, min_free_gib=0).check("card key").status == "warn"
    assert run_checks(new, min_free_gib=0, warn_free_gib=0).ok
    new.duckdb_path.write_bytes(b"")  # data held, key gone
    c = run_checks(new, min_free_gib=0).check("card key")
    assert c.status == "fail" and "restore keys/" in c.fix.lower()


def test_a_schema_behind_the_head_fails_and_the_chain_is_not_read(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "own")  # its own store: the shared one keeps its schema version
    owner_sql(ws, "UPDATE alembic_version SET version_num = '0001'")
    r = run_checks(ws, min_free_gib=0)
    assert r.check("case store").status == "fail"
    assert f"at schema 0001; this ore needs {head_revision()}" in r.check("case store").detail
    assert "Back up" in r.check("case store").fix
    assert r.check("audit chain").status == "fail"
    assert "ore 0.1.0" in version_text(ws) and "workspace at 0001" in version_text(ws)


def test_a_schema_from_a_newer_ore_fails(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "own")
    owner_sql(ws, "UPDATE alembic_version SET version_num = '9999'")
    c = run_checks(ws, min_free_gib=0).check("case store")
    assert c.status == "fail" and "does not know" in c.detail and "newer ore" in c.detail


def test_a_broken_audit_chain_fails_naming_the_entry(ws: Workspace) -> None:
    owner_sql(ws, "UPDATE audit_log SET outcome = 'changed' WHERE seq = 1")
    c = run_checks(ws, min_free_gib=0).check("audit chain")
    assert c.status == "fail" and c.detail.startswith("broken at entry 1") and "checkpoint" in c.fix


def test_an_unreachable_server_fails_in_seconds(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws", get_settings(database_url="postgresql://ore:secret@127.0.0.1:1/ore"))
    c = run_checks(ws, min_free_gib=0).check("case store")
    assert c.status == "fail" and c.detail.startswith("cannot reach the case store at")
    assert "secret" not in c.detail and "ORE_DATABASE_URL" in c.fix
    assert "case store unreachable" in version_text(ws)


def test_too_little_disk_fails_and_little_warns(ws: Workspace) -> None:
    assert run_checks(ws, min_free_gib=1e9).check("free disk").status == "fail"
    assert run_checks(ws, min_free_gib=0, warn_free_gib=1e9).check("free disk").status == "warn"


def test_the_doctor_creates_nothing(tmp_path: Path) -> None:
    r = run_checks(tmp_path / "absent")
    assert not r.ok and r.check("workspace").status == "fail" and r.check("case store").status == "fail"
    assert version_text(tmp_path / "absent") == f"ore {__version__} (schema {head_revision()} head; " \
                                                "workspace has no case store yet)"
    assert not (tmp_path / "absent").exists()


def test_version_text_names_the_head_and_the_workspace_schema(ws: Workspace) -> None:
    head = head_revision()
    assert version_text(ws) == f"ore {__version__} (schema {head} head; workspace at {head})"


# --- the command -------------------------------------------------------------------------------


def cli() -> typer.Typer:
    """As ore.cli registers it: a main callback holding -w, and the doctor command."""
    app = typer.Typer()

    @app.callback()
    def main(workspace: Path | None = typer.Option(None, "--workspace", "-w")) -> None:  # noqa: B008
        pass

    app.command()(doctor)
    return app


def test_command_exit_0_on_a_sound_workspace_from_either_workspace_option(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    for args in (["-w", str(ws.root), "doctor"], ["doctor", "-w", str(ws.root)]):
        r = CliRunner().invoke(cli(), [*args, "--min-free-gib", "0", "--warn-free-gib", "0"])
        assert r.exit_code == 0, r.output
        assert "nothing to fix" in r.output and "card key" in r.output and str(ws.root) in r.output.replace("\n", "")


def test_command_exit_1_and_prints_the_fix(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    (ws.root / "keys" / "card-v1.key").chmod(0o640)
    r = CliRunner().invoke(cli(), ["doctor", "-w", str(ws.root), "--min-free-gib", "0"], terminal_width=200)
    assert r.exit_code == 1, r.output
    assert "FAIL" in r.output and "chmod 600" in r.output and "1 check(s) failed: card key" in r.output


def test_command_json_for_monitoring(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    r = CliRunner().invoke(cli(), ["doctor", "-w", str(ws.root), "--json", "--min-free-gib", "0"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["ok"] is True and out["versions"]["schema head"] == head_revision()
    assert {c["name"] for c in out["checks"]} == {"workspace", "case store", "audit chain", "card key", "free disk",
                                                  "case store integrity", "bulk tables", "unfinished run",
                                                  "leftover files"}
