"""A full disk during ingest: one clear error naming the disk, the store whole, and the run completes
once there is room.

Two ways: the real thing, with the workspace on a small tmpfs filled to a few levels below what
the ingest needs (root only: the tests skip, and say so, where no tmpfs can be mounted); and
ENOSPC injected at each layer ingest writes through (the unpacked package, DuckDB, the card key,
the case store's audit entry), which runs everywhere.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

import crashkit
from ore.cli import app
from ore.config import get_settings
from ore.ops.doctor import run_checks
from ore.store import store_for
from ore.synth import generate
from ore.workspace import Workspace

FULL = "no space left on the disk holding"
INTEGRITY = ("case store integrity", "bulk tables", "audit chain")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("full-package")
    generate(root / "scenario", people=1500, subscribers=120, seed=31)
    with zipfile.ZipFile(root / "package.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted((root / "scenario" / "package").iterdir()):
            z.write(f, f.name)
    return root / "package.zip"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with its key and a migrated case store, copied into each test's disk."""
    root = tmp_path_factory.mktemp("full-base")
    ws = Workspace.open(root / "ws", get_settings())
    ws.card_key()
    store_for(ws).dispose()
    return root


@pytest.fixture(scope="module")
def clean(base: Path, package: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What one ingest with room to spare leaves."""
    run_dir = tmp_path_factory.mktemp("full-clean") / "run"
    shutil.copytree(base, run_dir)
    r = crashkit.run(["-w", str(run_dir / "ws"), "ingest", str(package)], {}, run_dir.parent / "ore.log")
    assert r.exitcode == 0, r.log
    return crashkit.canonical(run_dir, run_dir / "ws")


def broken(ws: Path) -> list[str]:
    report = run_checks(ws, min_free_gib=0, warn_free_gib=0)
    return [f"{c.name}: {c.detail}" for c in report.checks if c.name in INTEGRITY and c.status == "fail"]


def ingest_audits(ws: Path) -> int:
    con = sqlite3.connect(f"file:{ws / 'cases.sqlite'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM audit_log WHERE action = 'ingest'").fetchone()[0]
    finally:
        con.close()


# --- a real full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)], check=True,
                       capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        reason = getattr(e, "stderr", None) or str(e)
        pytest.skip(f"cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN): {reason.strip()}; "
                    "the real disk-full test did not run (the injected ENOSPC tests below still do)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True, timeout=30)


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all the free space of ``disk`` but ``leave`` bytes."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as f:
        f.truncate(0)
        if free > leave:
            f.write(b"\0" * (free - leave))
    return filler


def test_ingest_on_a_full_disk_says_so_keeps_the_store_whole_and_finishes_once_there_is_room(
        small_disk: Path, base: Path, package: Path, clean: dict[str, Any]) -> None:
    run_dir = small_disk / "run"
    argv = ["-w", str(run_dir / "ws"), "ingest", str(package)]
    log = small_disk.parent / "ore.log"

    # how much the ingest needs on this disk, measured by one that had room
    shutil.copytree(base, run_dir)
    before = shutil.disk_usage(small_disk).used
    assert crashkit.run(argv, {}, log).exitcode == 0
    needed = shutil.disk_usage(small_disk).used - before
    shutil.rmtree(run_dir)

    failed = 0
    for share in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9):
        shutil.copytree(base, run_dir)
        filler = _fill(small_disk, int(needed * share))
        log.unlink(missing_ok=True)
        first = crashkit.run(argv, {}, log)
        where = f"with {share:.0%} of the {needed:,} bytes the ingest needs"
        if first.exitcode != 0:
            failed += 1
            assert first.exitcode == 2 and FULL in first.log and str(run_dir / "ws") in first.log, \
                f"{where}: exit {first.exitcode}\n{first.log}"
            assert "Traceback" not in first.log, f"{where}:\n{first.log}"
        assert not broken(run_dir / "ws"), f"{where}: {broken(run_dir / 'ws')}"
        assert not list((run_dir / "ws" / "tmp").iterdir()), f"{where}: unpacked files left behind"

        filler.unlink()
        again = crashkit.run(argv, {}, log)
        assert again.exitcode == 0, f"{where}: the run once there was room\n{again.log}"
        assert not broken(run_dir / "ws")
        diff = crashkit.differences(crashkit.canonical(run_dir, run_dir / "ws"), clean)
        assert not diff, f"{where}: " + "\n".join(diff)
        assert ingest_audits(run_dir / "ws") == 1, where
        shutil.rmtree(run_dir)
    assert failed >= 3, f"only {failed} of 6 fill levels ran out of space: the test no longer tests a full disk"


# --- ENOSPC injected where ingest writes ----------------------------------------------------------


def _no_space(*_a: Any, **_k: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _unpack_fails(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    real_open = Path.open

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and ws / "tmp" in self.parents:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)


def _duckdb_fails(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    import ore.ingest.package as package

    def load(*_a: Any, **_k: Any) -> None:
        raise duckdb.IOException(f'Could not write file "{ws / "ore.duckdb.wal"}": No space left on device')

    monkeypatch.setattr(package.bulk, "load", load)


def _key_fails(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    for key in (ws / "keys").glob("card-v*.key"):
        key.unlink()  # a new workspace: the ingest makes the key, and its fsync finds the disk full
    monkeypatch.setattr("ore.workspace.os.fsync", _no_space)


def _audit_fails(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    def record(*_a: Any, **_k: Any) -> None:
        raise OperationalError("INSERT INTO audit_log ...", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr("ore.audit.record", record)


@pytest.mark.parametrize("fault", [_unpack_fails, _duckdb_fails, _key_fails, _audit_fails],
                         ids=["unpacking", "duckdb", "card key", "audit entry"])
def test_enospc_anywhere_in_ingest_is_one_clear_error_and_the_next_run_completes(
        fault: Any, base: Path, package: Path, clean: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    ws = run_dir / "ws"
    argv = ["-w", str(ws), "ingest", str(package)]

    with monkeypatch.context() as m:
        fault(m, ws)
        r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2, (r.output, r.exception)
    assert FULL in r.output and str(ws) in r.output.replace("\n", ""), r.output
    assert not broken(ws), broken(ws)
    assert not list((ws / "tmp").iterdir())

    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 0, (r.output, r.exception)
    assert not broken(ws)
    assert ingest_audits(ws) == 1  # the entry a failed audit write lost is written by the next run
    if fault is not _key_fails:  # a new key makes other tokens; everything else is the clean run's
        diff = crashkit.differences(crashkit.canonical(run_dir, ws), clean)
        assert not diff, "\n".join(diff)
