"""The doctor's store-integrity checks find each kind of damage a crash or a bad copy can leave,
name where it is, and pass a whole workspace. (The crash tests, tests/reliability, use them after
every SIGKILL; here each check is shown to fail when it should.)"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import text

import ore.ops.integrity as integrity
from ore.config import get_settings
from ore.ingest import ingest, load_reference
from ore.ops.doctor import run_checks
from ore.store import store_for
from ore.synth import generate
from ore.workspace import Workspace


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding one ingested package and the reference holdings."""
    root = tmp_path_factory.mktemp("integrity")
    generate(root / "scenario", people=400, subscribers=40, seed=5)
    ws = Workspace.open(root / "ws", get_settings())
    ingest(ws, root / "scenario" / "package")
    load_reference(ws, root / "scenario" / "reference")
    store_for(ws).dispose()  # the case store, migrated
    return root / "ws"


@pytest.fixture
def ws(sound: Path, tmp_path: Path) -> Workspace:
    shutil.copytree(sound, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws", get_settings())


def checks(ws: Workspace) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in run_checks(ws, min_free_gib=0, warn_free_gib=0).checks}


def duck(ws: Workspace, sql: str) -> None:
    con = duckdb.connect(str(ws.duckdb_path))
    con.execute(sql)
    con.close()


def package_id(ws: Workspace) -> str:
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    (pid,), = con.execute("SELECT package_id FROM packages").fetchall()
    con.close()
    return pid


def test_a_whole_workspace_passes_every_integrity_check(ws: Workspace) -> None:
    found = checks(ws)
    for name in ("case store integrity", "bulk tables", "unfinished run", "leftover files"):
        assert found[name][0] == "ok", found[name]
    assert "ingest accounts balance" in found["bulk tables"][1]


@pytest.mark.parametrize(("damage", "said"), [
    ("DELETE FROM leads WHERE line = (SELECT min(line) FROM leads)", "accepted, {n} stored"),
    ("INSERT INTO leads SELECT * FROM leads WHERE line = (SELECT min(line) FROM leads)", "twice"),
    ("DELETE FROM visits WHERE line = (SELECT max(line) FROM visits)", "visits.csv"),
    ("DELETE FROM quarantine WHERE line = (SELECT min(line) FROM quarantine)", "quarantined"),
    ("UPDATE leads SET package_id = 'GHOST' WHERE line = (SELECT min(line) FROM leads)", "GHOST"),
    ("DELETE FROM ingest_files", "recorded without its files"),
    ("DELETE FROM ref_register WHERE rowid = 0", "register.csv"),
])
def test_rows_lost_or_doubled_in_the_bulk_tables_fail_naming_the_package(ws: Workspace, damage: str,
                                                                        said: str) -> None:
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    (accepted,), = con.execute("SELECT accepted FROM ingest_files WHERE file = 'leads.csv'").fetchall()
    con.close()
    duck(ws, damage)
    status, detail = checks(ws)["bulk tables"]
    assert status == "fail" and said.format(n=f"{accepted - 1:,}") in detail, detail
    if "GHOST" not in damage and "ref_" not in damage:
        assert package_id(ws) in detail


def test_a_duckdb_file_that_does_not_open_fails(ws: Workspace) -> None:
    data = bytearray(ws.duckdb_path.read_bytes())
    data[:4096] = b"\xff" * 4096  # the file header
    ws.duckdb_path.write_bytes(bytes(data))
    status, detail = checks(ws)["bulk tables"]
    assert status == "fail" and "does not open" in detail


def test_a_case_store_row_pointing_nowhere_fails(ws: Workspace) -> None:
    con = sqlite3.connect(ws.root / "cases.sqlite")  # foreign keys off, as a damaged copy could be
    con.execute("INSERT INTO packages (id, package_ref, operation_id, first_imported_at) "
                "VALUES (99, 'P-99', 12345, '2026-11-29 21:00:00')")
    con.commit()
    con.close()
    status, detail = checks(ws)["case store integrity"]
    assert status == "fail" and "packages row 99 points at a missing operations" in detail


def test_a_damaged_sqlite_page_fails(ws: Workspace) -> None:
    engine = store_for(ws).engine
    with engine.begin() as conn:  # enough rows for an index of several pages
        conn.execute(text("INSERT INTO operations (name, created_at) "
                          "SELECT 'op ' || value, '2026-11-29 21:00:00' FROM json_each(:v)"),
                     {"v": json.dumps(list(range(3000)))})
    engine.dispose()
    path = ws.root / "cases.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'operations'")\
        .fetchone()[0]
    con.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page
    data[start + 100:start + page] = bytes(page - 100)  # an index page zeroed, the header kept
    path.write_bytes(bytes(data))
    status, detail = checks(ws)["case store integrity"]
    assert status == "fail", detail


def test_a_run_killed_holding_the_lock_is_named_and_one_still_running_is_not(ws: Workspace,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (ws.root / ".lock").touch()
    (ws.root / ".lock.holder").write_text(json.dumps({"pid": 4242, "purpose": "ingest package.zip",
                                                      "since": "2026-11-29T21:00:00"}), encoding="utf-8")
    status, detail = checks(ws)["unfinished run"]
    assert status == "warn" and "`ingest package.zip` (pid 4242" in detail and "stopped before" in detail

    monkeypatch.setattr(integrity, "LOCK_WAIT_SECONDS", 0.1)
    with ws.lock("triage PKG"):  # a live holder: this process
        found = checks(ws)
    assert found["unfinished run"][0] == "ok" and "is running now" in found["unfinished run"][1]
    assert found["bulk tables"][0] == "warn" and "not checked" in found["bulk tables"][1]
    assert checks(ws)["unfinished run"][0] == "ok"  # the lock let go, its note gone


def test_temporary_files_of_killed_runs_are_named(ws: Workspace) -> None:
    (ws.tmp / "unpack-abc123").mkdir()
    (ws.tmp / "unpack-abc123" / "leads.csv").write_text("record_id,card_number\n", encoding="utf-8")
    (ws.root / "watch" / "0123456789ab" / ".WATCH-0123456789AB-x1").mkdir(parents=True)
    status, detail = checks(ws)["leftover files"]
    assert status == "warn" and "tmp/unpack-abc123" in detail and ".WATCH-0123456789AB-x1" in detail
    assert "clear card numbers" in detail


def test_the_checks_change_nothing(ws: Workspace) -> None:
    before = {p: p.stat().st_mtime_ns for p in ws.root.rglob("*") if p.is_file()}
    checks(ws)
    assert {p: p.stat().st_mtime_ns for p in ws.root.rglob("*") if p.is_file()} == before
