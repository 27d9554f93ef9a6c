"""ore backup and ore restore: a whole, private, verified copy of a workspace; a tampered backup is refused;
a non-empty workspace is kept unless forced; restoring an older backup is reported as a rollback by the
restore itself, by ore doctor and by the audit checkpoint check."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from casekit import pg_database
from typer.testing import CliRunner

from ingest.leadpkg import card, lead, open_ws, query, settings_env, write_package
from ore.audit import record, verify_chain
from ore.audit.checkpoint import check_kept_checkpoint
from ore.cli import app
from ore.errors import OreError
from ore.ingest import ingest
from ore.ops.backup import backup, restore, verify
from ore.ops.doctor import run_checks
from ore.store import head_revision, store_for
from ore.store.access import AuditEntry
from ore.workspace import Workspace


def filled(root: Path, tmp_path: Path, **settings: object) -> Workspace:
    """A workspace with an ingested package (so a card key and DuckDB tables) and a case store."""
    ws = open_ws(root, **settings)
    rows = [lead(i, card_number=card(i)) for i in range(1, 4)]
    ingest(ws, write_package(tmp_path / f"pkg-{root.name}", rows, package_id="PKG-1"))
    work(ws, "first")
    return ws


def work(ws: Workspace, what: str) -> None:
    store = store_for(ws)
    with store.session() as s:
        record(s, user="analyst", action=f"test.{what}", category="consultation", purpose="triage")
    store.dispose()


def actions(ws: Workspace) -> list[str]:
    store = store_for(ws)
    try:
        with store.session() as s:
            assert verify_chain(s).ok
            return [e.action for e in s.query(AuditEntry).order_by(AuditEntry.seq)]
    finally:
        store.dispose()


def rewrite_member(archive: Path, name: str, change) -> None:
    """The archive with one member's bytes changed (as tampering or a bad disk would)."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(archive, "w") as tar:
        for m, data in members:
            data = change(data) if m.name == name else data
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


def test_backup_then_restore_gives_the_same_workspace(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    out = tmp_path / "b.tar"
    m = backup(ws, out, user="os:ops")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert m["schema_head"] == head_revision() and m["keys_included"] and "card-token keys" in m["notice"]
    assert set(m["files"]) == {"cases.sqlite", "ore.duckdb", "audit-checkpoint.json", "keys/card-v1.key",
                               "keys/signing-ed25519.pem"}
    assert m["audit_head"]["seq"] == len(actions(ws)), "the backup's own entry is inside the copy"

    v = verify(out)
    assert v.ok, v.problems
    assert [name for name, _, _ in v.checks] == ["files", "hashes", "case store", "audit chain", "checkpoint",
                                                 "bulk tables"]

    target = open_ws(tmp_path / "restored")
    r = restore(out, target.root, settings=target.settings, user="os:ops")
    assert r.checks.ok and r.rollback is None
    assert query(target, "SELECT record_id, card_token FROM leads ORDER BY 1") == query(
        ws, "SELECT record_id, card_token FROM leads ORDER BY 1")
    assert target.card_keys() == ws.card_keys()
    assert (target.root / "keys" / "signing-ed25519.pem").read_bytes() == (
        ws.root / "keys" / "signing-ed25519.pem").read_bytes()
    assert actions(target) == [*actions(ws), "ops.restore"]
    assert actions(ws)[-1] == "ops.backup"


def test_backup_holds_commits_still_in_the_write_ahead_log(tmp_path: Path) -> None:
    """A raw copy of cases.sqlite would miss commits not yet checkpointed out of the WAL; the backup API does not."""
    ws = filled(tmp_path / "ws", tmp_path)
    live = sqlite3.connect(ws.root / "cases.sqlite")
    live.execute("PRAGMA wal_autocheckpoint=0")  # keep the commit in cases.sqlite-wal
    live.execute("CREATE TABLE wal_probe (x INTEGER)")
    live.execute("INSERT INTO wal_probe VALUES (42)")
    live.commit()
    try:
        assert (ws.root / "cases.sqlite-wal").stat().st_size > 0
        backup(ws, tmp_path / "b.tar", user="os:ops")
    finally:
        live.close()
    target = tmp_path / "restored"
    restore(tmp_path / "b.tar", target, settings=open_ws(target).settings, user="os:ops")
    copy = sqlite3.connect(target / "cases.sqlite")
    try:
        assert copy.execute("SELECT x FROM wal_probe").fetchall() == [(42,)]
    finally:
        copy.close()


def test_a_tampered_backup_fails_verification_and_is_not_restored(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    out = tmp_path / "b.tar"
    backup(ws, out, user="os:ops")
    rewrite_member(out, "ore.duckdb", lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    v = verify(out)
    assert not v.ok and v.problems == ["hashes: SHA-256 differs: ore.duckdb"]
    target = tmp_path / "restored"
    with pytest.raises(OreError, match="fails verification, nothing was restored"):
        restore(out, target, settings=open_ws(target).settings, user="os:ops")
    assert not (target / "ore.duckdb").exists() and not (target / "cases.sqlite").exists()


def test_an_archive_with_other_paths_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        for name in ("manifest.json", "../outside.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(OreError, match="unexpected entry '../outside.txt'"):
        verify(evil)
    assert not (tmp_path / "outside.txt").exists()


def test_restore_keeps_a_non_empty_workspace_unless_forced(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    out = tmp_path / "b.tar"
    backup(ws, out, user="os:ops")
    other = filled(tmp_path / "other", tmp_path)
    before = actions(other)
    with pytest.raises(OreError, match="is not empty"):
        restore(out, other.root, settings=other.settings, user="os:ops")
    assert actions(other) == before and other.card_keys() != ws.card_keys()
    restore(out, other.root, settings=other.settings, user="os:ops", force=True)
    assert other.card_keys() == ws.card_keys()
    assert actions(other)[-1] == "ops.restore" and actions(other)[:-1] == actions(ws)


def test_restoring_an_older_backup_is_reported_as_a_rollback(tmp_path: Path) -> None:
    kept = tmp_path / "operator" / "audit-checkpoint.json"
    kept.parent.mkdir()
    ws = filled(tmp_path / "ws", tmp_path, audit_checkpoint=kept)
    backup(ws, tmp_path / "monday.tar", user="os:ops")
    work(ws, "tuesday")
    backup(ws, tmp_path / "tuesday.tar", user="os:ops")  # renews the operator's checkpoint

    r = restore(tmp_path / "monday.tar", ws.root, settings=ws.settings, user="os:ops", force=True)
    assert r.rollback is not None and r.rollback.startswith("ROLLBACK")
    doctor = run_checks(ws, min_free_gib=0, warn_free_gib=0)
    assert not doctor.ok
    check = doctor.check("audit checkpoint")
    assert check.status == "fail" and "ROLLBACK" in check.detail
    store = store_for(ws)
    with store.session() as s:
        assert check_kept_checkpoint(s, kept, ws.root / "keys").rollback
        restored = s.query(AuditEntry).order_by(AuditEntry.seq.desc()).first()
        assert restored.action == "ops.restore" and json.loads(restored.detail)["rollback"] is True
    store.dispose()

    r = restore(tmp_path / "tuesday.tar", ws.root, settings=ws.settings, user="os:ops", force=True)
    assert r.rollback is None and "as checkpointed" in r.checkpoint
    assert r.warnings == ["the case store this restore replaced had a different entry 3: its history had diverged "
                          "from this backup's, and its entries from there on are not in the restored store"]
    assert run_checks(ws, min_free_gib=0, warn_free_gib=0).check("audit checkpoint").status == "ok"


def test_without_keys_the_backup_says_so_and_the_restore_warns(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    m = backup(ws, tmp_path / "b.tar", keys=False, user="os:ops")
    assert not any(name.startswith("keys/") for name in m["files"]) and "holds no keys" in m["notice"]
    assert verify(tmp_path / "b.tar").ok
    target = tmp_path / "restored"
    r = restore(tmp_path / "b.tar", target, settings=open_ws(target).settings, user="os:ops")
    assert any("key backup" in w for w in r.warnings)
    assert not list((target / "keys").glob("card-v*.key"))
    assert run_checks(target, min_free_gib=0, warn_free_gib=0).check("card key").status == "fail"


def test_backup_never_overwrites_and_never_writes_into_the_workspace(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    (tmp_path / "b.tar").write_bytes(b"x")
    with pytest.raises(OreError, match="never overwrites"):
        backup(ws, tmp_path / "b.tar", user="os:ops")
    with pytest.raises(OreError, match="inside the workspace"):
        backup(ws, ws.root / "b.tar", user="os:ops")


def test_the_commands(tmp_path: Path) -> None:
    kept = tmp_path / "kept.json"
    ws = filled(tmp_path / "ws", tmp_path, audit_checkpoint=kept)
    env = settings_env(ws.root, ORE_AUDIT_CHECKPOINT=str(kept))
    runner = CliRunner()
    done = runner.invoke(app, ["backup", str(tmp_path / "one.tar")], env=env)
    assert done.exit_code == 0 and "mode 0600" in done.output, done.output
    assert kept.exists()
    assert runner.invoke(app, ["backup", "--verify", str(tmp_path / "one.tar")], env=env).exit_code == 0
    work(ws, "later")
    assert runner.invoke(app, ["backup", str(tmp_path / "two.tar")], env=env).exit_code == 0
    refused = runner.invoke(app, ["restore", str(tmp_path / "one.tar")], env=env)
    assert refused.exit_code == 2 and "not empty" in refused.output
    rolled = runner.invoke(app, ["restore", str(tmp_path / "one.tar"), "--force"], env=env)
    assert rolled.exit_code == 3 and "ROLLBACK" in rolled.output, rolled.output
    fresh = tmp_path / "fresh"
    ok = runner.invoke(app, ["restore", str(tmp_path / "two.tar"), "--workspace", str(fresh)], env=env)
    assert ok.exit_code == 0, ok.output
    assert runner.invoke(app, ["restore", "--verify-only", str(tmp_path / "two.tar")], env=env).exit_code == 0


def test_forcing_an_older_backup_over_a_newer_store_is_a_rollback_even_without_a_kept_checkpoint(
        tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    backup(ws, tmp_path / "old.tar", user="os:ops")
    work(ws, "since")
    r = restore(tmp_path / "old.tar", ws.root, settings=ws.settings, user="os:ops", force=True)
    assert r.rollback is not None and "had its audit log at entry 3; the restored one ends at entry 2" in r.rollback


def test_audit_verify_reports_the_rollback_against_the_kept_checkpoint(tmp_path: Path) -> None:
    from ore.auth.principal import SYSTEM
    from ore.auth.users import add_user

    kept = tmp_path / "kept.json"
    ws = filled(tmp_path / "ws", tmp_path, audit_checkpoint=kept)
    store = store_for(ws)
    with store.session() as s:
        add_user(s, SYSTEM, "aud", "correct horse battery", "auditor", must_change=False)
    store.dispose()
    backup(ws, tmp_path / "one.tar", user="os:ops")
    env = settings_env(ws.root, ORE_AUDIT_CHECKPOINT=str(kept), ORE_USER="aud", ORE_PASSWORD="correct horse battery")
    ok = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0 and "as checkpointed" in ok.output, ok.output
    work(ws, "later")
    backup(ws, tmp_path / "two.tar", user="os:ops")
    restore(tmp_path / "one.tar", ws.root, settings=ws.settings, user="os:ops", force=True)
    failed = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert failed.exit_code == 1 and "ROLLBACK" in failed.output, failed.output


@pytest.fixture
def two_pg_databases() -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL databases: the one backed up, and an empty one to restore into."""
    made = [pg_database(), pg_database()]
    urls = [next(g) for g in made]
    yield urls[0], urls[1]
    for g in made:
        with contextlib.suppress(StopIteration):
            next(g)


def test_a_postgresql_store_is_dumped_and_restored(two_pg_databases: tuple[str, str], tmp_path: Path) -> None:
    source, empty = two_pg_databases
    ws = filled(tmp_path / "ws", tmp_path, database_url=source)
    m = backup(ws, tmp_path / "b.tar", user="os:ops")
    assert m["store"] == "postgresql" and "cases.pgdump" in m["files"] and "cases.sqlite" not in m["files"]
    assert verify(tmp_path / "b.tar").ok
    target = open_ws(tmp_path / "restored", database_url=empty)
    r = restore(tmp_path / "b.tar", target.root, settings=target.settings, user="os:ops")
    assert r.checks.ok and r.rollback is None
    assert actions(target) == [*actions(ws), "ops.restore"]
    assert query(target, "SELECT count(*) FROM leads") == [(3,)]
    again = open_ws(tmp_path / "again", database_url=empty)
    with pytest.raises(OreError, match="database of ORE_DATABASE_URL is not empty"):
        restore(tmp_path / "b.tar", again.root, settings=again.settings, user="os:ops")


def test_a_backup_of_a_broken_audit_chain_is_refused_and_the_refusal_recorded(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    con = sqlite3.connect(ws.root / "cases.sqlite")
    con.execute(f"UPDATE {AuditEntry.__tablename__} SET detail = '{{\"changed\": true}}' WHERE seq = 1")
    con.commit()
    con.close()
    with pytest.raises(OreError, match="the audit log does not verify"):
        backup(ws, tmp_path / "b.tar", user="os:ops")
    assert not (tmp_path / "b.tar").exists() and not list(tmp_path.glob(".b.tar*"))
    store = store_for(ws)
    with store.session() as s:
        last = s.query(AuditEntry).order_by(AuditEntry.seq.desc()).first()
        assert (last.action, last.outcome.split(":")[0]) == ("ops.backup", "failed")
    store.dispose()


def test_staging_left_by_a_killed_backup_or_restore_is_removed_by_the_next(tmp_path: Path) -> None:
    ws = filled(tmp_path / "ws", tmp_path)
    for name in ("backup-killed", "restore-killed"):
        (ws.tmp / name / "keys").mkdir(parents=True)
        (ws.tmp / name / "keys" / "card-v1.key").write_bytes(b"k" * 32)
    backup(ws, tmp_path / "b.tar", user="os:ops")
    assert list(ws.tmp.iterdir()) == []
