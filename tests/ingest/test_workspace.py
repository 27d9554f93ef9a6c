"""Two processes on one workspace wait for each other or fail with a clear message; never corrupt it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from leadpkg import lead, open_ws, query, settings_env, table_count, write_package
from ore.errors import PackageRejected
from ore.ingest import ingest


def ore(args, env, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ore.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_second_process_fails_clearly_when_the_workspace_stays_busy(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1)])
    env = settings_env(ws.root, ORE_LOCK_TIMEOUT="1")
    with ws.lock("test holding the workspace"):
        proc = ore(["ingest", str(pkg)], env)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "busy" in err and "test holding the workspace" in err and "ORE_LOCK_TIMEOUT" in err
    assert "Traceback" not in err
    assert table_count(ws, "leads") == 0


def test_second_process_waits_and_succeeds_when_the_lock_is_released(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(1), lead(2)])
    env = settings_env(ws.root, ORE_LOCK_TIMEOUT="60")
    with ws.lock("test holding the workspace"):
        proc = ore(["ingest", str(pkg)], env)
        time.sleep(2)
        assert proc.poll() is None, "the second process waits while the lock is held"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "2 rows read = 2 accepted + 0 quarantined" in out
    assert table_count(ws, "leads") == 2


def test_reader_waits_for_a_writer_or_says_busy(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "pkg", [lead(1, amount="x")]))
    with ws.duckdb() as con:  # a writer has the database open
        con.execute("SELECT 1").fetchall()
        proc = ore(["quarantine"], settings_env(ws.root, ORE_LOCK_TIMEOUT="1"))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "busy" in err and "Traceback" not in err
    proc = ore(["quarantine"], settings_env(ws.root, ORE_LOCK_TIMEOUT="10"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "amount" in out


def test_concurrent_ingests_of_different_packages_both_land_whole(tmp_path):
    ws = open_ws(tmp_path / "ws")
    env = settings_env(ws.root, ORE_LOCK_TIMEOUT="120")
    procs = []
    for n in range(3):
        pkg = write_package(tmp_path / f"pkg{n}", [lead(i) for i in range(1, 301)], package_id=f"P-{n}")
        procs.append(ore(["ingest", str(pkg)], env))
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    assert query(ws, "SELECT package_id, count(*) FROM leads GROUP BY 1 ORDER BY 1") == [
        ("P-0", 300), ("P-1", 300), ("P-2", 300)]
    assert len(list((ws.root / "keys").glob("card-v*.key"))) == 1, "one key, made once"
    assert query(ws, "SELECT count(DISTINCT card_token) FROM leads") == [(300,)]


def test_the_same_package_twice_at_once_lands_once(tmp_path):
    ws = open_ws(tmp_path / "ws")
    pkg = write_package(tmp_path / "pkg", [lead(i) for i in range(1, 101)])
    env = settings_env(ws.root, ORE_LOCK_TIMEOUT="120")
    procs = [ore(["ingest", str(pkg)], env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("already ingested" in out for out, _ in outs) == 1
    assert table_count(ws, "leads") == 100


def test_workspace_path_that_is_a_file_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from ore.cli import app

    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(app, ["quarantine"], env=settings_env(tmp_path / "afile"))
    assert result.exit_code == 2
    assert "is not a directory" in result.output


def test_lock_is_released_after_a_rejected_ingest(tmp_path):
    ws = open_ws(tmp_path / "ws", lock_timeout=1)
    bad = write_package(tmp_path / "bad", [lead(1)], rows={"leads.csv": 5})
    with pytest.raises(PackageRejected):
        ingest(ws, bad)
    assert not (ws.root / ".lock.holder").exists()
    with ws.lock("after"):
        pass


@pytest.mark.slow
def test_an_ingest_killed_mid_way_leaves_all_or_nothing_and_resumes(tmp_path):
    ws = open_ws(tmp_path / "ws")
    n = 8_000
    pkg = write_package(tmp_path / "pkg", [lead(i) for i in range(1, n + 1)])
    proc = ore(["ingest", str(pkg)], settings_env(ws.root))
    deadline = time.monotonic() + 60
    while not ws.duckdb_path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.kill()
    proc.communicate(timeout=60)
    landed = table_count(ws, "leads"), table_count(ws, "packages")
    assert landed in ((0, 0), (n, 1)), f"a partial package after a kill: {landed}"
    report = ingest(ws, pkg)
    assert report.status in ("ingested", "already ingested")
    assert (table_count(ws, "leads"), table_count(ws, "packages")) == (n, 1)
    assert query(ws, "SELECT count(DISTINCT record_id) FROM leads") == [(n,)]
