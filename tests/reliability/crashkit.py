"""Running ``ore`` commands in real processes that die by SIGKILL, and comparing what they leave.

Processes: a forkserver that has imported ore once forks one child per command run, so a
run costs the command's own work, not a second of imports each time (the crash tests run
a few hundred). Each child is a real process running ``ore.cli.app`` with its own argv and
environment; it is killed with SIGKILL, by the parent after a delay, or by itself at its
N-th checkpoint.

Checkpoints (counted in the child only, nothing in ore knows of them): every DuckDB
``COMMIT`` on the workspace file, every case-store commit (before it, and after it for
ORM sessions), every ``os.replace``/``os.link`` (before and after). A run with no kill
counts them, so kills can be aimed at each boundary where a write becomes durable.

``canonical`` is the end state of a workspace as the crash tests compare it: every DuckDB
table, every case-store table but the sign-in bookkeeping, the audit entries, the files
(names, and contents where they are deterministic), without the clocks and timings that
legitimately differ between two runs.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

PRELOAD = ["ore.cli", "ore.pipeline", "ore.cases.importer", "ore.watch.screening", "ore.watch.cli", "ore.ingest",
           "ore.resolve", "ore.store", "ore.auth.sessions", "crashkit"]
_CTX: Any = None


def context() -> Any:
    """The forkserver context, started once per test process with ore already imported.

    It is started here, by a first child that does nothing, so that the imports are not counted
    in the first command's duration (the delays of the timed kills are drawn from it).
    """
    global _CTX
    if _CTX is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        p = ctx.Process(target=_nothing)
        p.start()
        p.join()
        _CTX = ctx
    return _CTX


def _nothing() -> None:
    return None


# --- the child ---------------------------------------------------------------------------------


class _Checkpoints:
    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.seen: list[str] = []

    def __call__(self, what: str) -> None:
        self.seen.append(what)
        if self.kill_at is not None and len(self.seen) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


class _CountedConnection:
    """A DuckDB connection to the workspace file whose COMMITs are checkpoints."""

    def __init__(self, con: duckdb.DuckDBPyConnection, point: _Checkpoints) -> None:
        self._con = con
        self._point = point

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        commit = isinstance(sql, str) and sql.strip().upper() == "COMMIT"
        if commit:
            self._point("duckdb commit (before)")
        result = self._con.execute(sql, *args, **kwargs)
        if commit:
            self._point("duckdb commit (after)")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def __enter__(self) -> _CountedConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._con.close()


def _install(point: _Checkpoints) -> None:
    from sqlalchemy import Engine, event
    from sqlalchemy.orm import Session

    connect = duckdb.connect

    def counted_connect(database: Any = ":memory:", *args: Any, **kwargs: Any) -> Any:
        con = connect(database, *args, **kwargs)
        return _CountedConnection(con, point) if str(database).endswith("ore.duckdb") else con

    duckdb.connect = counted_connect  # type: ignore[assignment]
    event.listen(Engine, "commit", lambda _conn: point("store commit (before)"))
    event.listen(Session, "after_commit", lambda _s: point("store commit (after)"))
    for name in ("replace", "link"):
        real = getattr(os, name)

        def wrapped(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            point(f"os.{_name} (before)")
            result = _real(*args, **kwargs)
            point(f"os.{_name} (after)")
            return result

        setattr(os, name, wrapped)


def _child(argv: list[str], env: dict[str, str], log: str, kill_at: int | None, count_file: str | None) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    point = _Checkpoints(kill_at)
    _install(point)
    from ore.cli import app

    code: Any = 0
    try:
        app(argv, prog_name="ore")
    except SystemExit as e:
        code = e.code
    if count_file:
        Path(count_file).write_text(json.dumps(point.seen), encoding="utf-8")
    os._exit(code if isinstance(code, int) else 1)


# --- the parent --------------------------------------------------------------------------------


@dataclass
class Run:
    exitcode: int | None
    killed: bool
    seconds: float
    checkpoints: list[str]
    log: str


def run(argv: list[str], env: dict[str, str], log: Path, *, kill_at: int | None = None,
        kill_after: float | None = None, timeout: float = 120.0) -> Run:
    """Run ``ore ARGV`` in a child; kill it at checkpoint ``kill_at`` or after ``kill_after`` seconds."""
    count_file = str(log) + ".checkpoints"
    Path(count_file).unlink(missing_ok=True)
    start = time.perf_counter()
    p = context().Process(target=_child, args=(argv, env, str(log), kill_at, count_file))
    p.start()
    killed_by_us = False
    if kill_after is not None:
        p.join(kill_after)
        if p.exitcode is None:
            os.kill(p.pid, signal.SIGKILL)
            killed_by_us = True
    p.join(timeout)
    if p.exitcode is None:
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        raise AssertionError(f"ore {' '.join(argv)} did not finish in {timeout} s; log {log}")
    seconds = time.perf_counter() - start
    seen = json.loads(Path(count_file).read_text(encoding="utf-8")) if Path(count_file).exists() else []
    return Run(p.exitcode, killed_by_us or p.exitcode == -signal.SIGKILL, seconds, seen,
               log.read_text(encoding="utf-8", errors="replace") if log.exists() else "")


# --- the end state -----------------------------------------------------------------------------

# Case-store tables of signing in and of the audit chain's bookkeeping: each run signs in afresh.
SIGN_IN_TABLES = {"users", "login_failures", "login_sessions", "api_tokens", "audit_log", "audit_head",
                  "alembic_version"}
# Audit actions whose command, run again after a kill, does all its work again (and says so).
REPEATED_IN_FULL = {"triage"}
# Files whose content holds a clock or timings; their presence is still compared.
TIMED_FILES = {"run.json", "report.html", ".lock.holder"}
# Files that come and go with the databases' own journals.
JOURNALS = ("cases.sqlite-wal", "cases.sqlite-shm", "cases.sqlite-journal", "ore.duckdb.wal", ".lock")


def _screen_summary(text: str) -> dict[str, Any]:
    """A screen's summary without its timings, and without the watch's bookkeeping of this run: a killed
    run that had brought the watch in step left the next run nothing to add (the tables are compared)."""
    summary = {k: v for k, v in json.loads(text).items() if k != "seconds"}
    summary["watchlist"] = {k: v for k, v in summary.get("watchlist", {}).items()
                            if k not in ("flags_added", "subjects_taken_off")}
    return summary


def _clockless(table: str, columns: list[str], types: list[str], row: tuple[Any, ...]) -> tuple[Any, ...]:
    out = []
    for name, kind, value in zip(columns, types, row, strict=True):
        if name in ("at", "ingested_at", "loaded_at") or (name.endswith("_at") and "TIME" in kind.upper()):
            continue
        if table == "watch_feeds" and name == "summary":
            value = _screen_summary(value)
        out.append(_rounded(value))  # match probabilities come from EM, as the models do
    return tuple(out)


def _duckdb_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        state = {}
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall():
            info = con.execute(f"DESCRIBE {table}").fetchall()
            cols, types = [c[0] for c in info], [c[1] for c in info]
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            state[table] = sorted((_clockless(table, cols, types, r) for r in rows), key=repr)
        return state
    finally:
        con.close()


def _store_state(path: Path) -> tuple[dict[str, list[tuple[Any, ...]]], list[tuple[Any, ...]]]:
    if not path.exists():
        return {}, []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        state = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1").fetchall():
            if table in SIGN_IN_TABLES:
                continue
            info = con.execute(f'PRAGMA table_info("{table}")').fetchall()
            cols, types = [c[1] for c in info], [c[2] for c in info]
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            state[table] = sorted((_clockless(table, cols, types, r) for r in rows), key=repr)
        entries = con.execute("SELECT username, action, category, objects, purpose, outcome FROM audit_log "
                              "WHERE category <> 'access' ORDER BY seq").fetchall()
        # A triage killed after its entry is run again in full, and logged again: truly, it combined the
        # data twice. Every other entry must be there exactly as often as after one clean run.
        audit = sorted(e for e in entries if e[1] not in REPEATED_IN_FULL) + sorted(
            {e for e in entries if e[1] in REPEATED_IN_FULL})
        return state, audit
    finally:
        con.close()


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _file_content(path: Path) -> Any:
    if path.name in TIMED_FILES:
        return "(timed)"
    if path.name.startswith("splink_model_"):
        # the same model under a new random name each time; its estimates to 6 figures (EM's sums run in
        # parallel threads, whose order moves the last digits from one run to the next)
        model = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k != "linker_uid"}
        return _rounded(model)
    if path.name == "summary.json":
        return _screen_summary(path.read_text(encoding="utf-8"))
    data = path.read_bytes()
    if path.suffix == ".csv":
        return list(csv.reader(io.StringIO(data.decode("utf-8"))))
    return data


def canonical(root: Path, workspace: Path) -> dict[str, Any]:
    """Everything under ``root`` that a run decides, without what differs between two clean runs."""
    tables, audit = _store_state(workspace / "cases.sqlite")
    files = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_dir() or p.name in JOURNALS or p.suffix in (".log", ".checkpoints") or p.parent.name == "sessions":
            continue
        if p.name in ("ore.duckdb", "cases.sqlite"):
            files[rel] = "(compared by table)"
            continue
        files[rel] = _file_content(p)
    return {"duckdb": _duckdb_state(workspace / "ore.duckdb"), "store": tables, "audit": audit, "files": files}


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What differs, named by table or file (short enough to read in a failure message)."""
    found = []
    for part in ("duckdb", "store", "files"):
        for name in sorted(set(got[part]) | set(want[part])):
            g, w = got[part].get(name), want[part].get(name)
            if g != w:
                if isinstance(g, list) and isinstance(w, list):
                    extra = [r for r in g if r not in w][:2]
                    missing = [r for r in w if r not in g][:2]
                    found.append(f"{part} {name}: {len(g)} rows against {len(w)} of a clean run; "
                                 f"extra {extra}, missing {missing}")
                else:
                    found.append(f"{part} {name}: {'missing' if g is None else 'extra' if w is None else 'differs'}")
    if got["audit"] != want["audit"]:
        found.append(f"audit entries differ: {got['audit']} against a clean run's {want['audit']}")
    return found
