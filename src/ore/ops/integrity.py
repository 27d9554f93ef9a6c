"""Is the workspace's data whole after a crash? The store-integrity checks of ``ore doctor``.

A run killed at any point (power cut, OOM killer, ``kill -9``) must leave data that is whole:
each write of ore is one transaction or one rename, so a killed run leaves either all of a
step or none of it, and re-running the command finishes the work. These checks are how an
operator confirms that after the fact, without trusting the code that was interrupted:

- the case store's own checks (SQLite ``PRAGMA integrity_check`` and ``foreign_key_check``;
  PostgreSQL checks its pages and enforces its keys itself);
- the DuckDB file opens and every table reads to its last row, and the ingest accounts
  balance: each file's stored rows are exactly the rows it accepted (none lost, none twice)
  and each quarantined line is there once; no row belongs to a package that was never
  recorded (half of an ingest);
- no run left unfinished: the workspace lock's holder note names a process that died
  holding it (its command's later steps did not run: run it again);
- no temporary file of a killed run is left lying about (unpacked packages and half-written
  lead packages hold clear card numbers).

Like the rest of the doctor, nothing here writes: DuckDB opens read-only, the lock is only
tried, and leftovers are named, not removed.
"""

from __future__ import annotations

import json

import duckdb
from filelock import FileLock, Timeout
from sqlalchemy import Engine, text

from ore.ingest.schema import LEADS, REFERENCE, VISITS
from ore.ops.doctor import Check, Status
from ore.workspace import Workspace

LOCK_WAIT_SECONDS = 2.0
SHOWN = 5  # problems named in one check's detail; the rest are counted


def _check(name: str, status: Status, detail: str, fix: str | None = None) -> Check:
    return Check(name, status, detail, fix)


def _listed(problems: list[str]) -> str:
    more = len(problems) - SHOWN
    return "; ".join(problems[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


# --- the case store ---------------------------------------------------------------------------


def case_store_integrity(engine: Engine) -> Check:
    """SQLite's page and index check and its foreign-key check; PostgreSQL needs neither from us."""
    name = "case store integrity"
    if engine.dialect.name != "sqlite":
        return _check(name, "ok", f"{engine.dialect.name}: the server checks its pages and enforces foreign keys")
    try:
        with engine.connect() as conn:
            pages = [r[0] for r in conn.execute(text("PRAGMA integrity_check")).fetchall()]
            orphans = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
    except Exception as e:  # noqa: BLE001 - a store too damaged to check is the finding
        return _check(name, "fail", f"could not check the SQLite file: {e}",
                      "Restore cases.sqlite from the last backup (docs/operator.md, Backup and restore).")
    problems = [p for p in pages if p != "ok"]
    problems += [f"{table} row {rowid} points at a missing {parent}" for table, rowid, parent, _ in orphans]
    if problems:
        return _check(name, "fail", f"{len(problems)} problem(s): {_listed(problems)}",
                      "Keep this copy as evidence and restore cases.sqlite from the last backup "
                      "(docs/operator.md, Backup and restore).")
    return _check(name, "ok", "SQLite integrity_check and foreign_key_check pass")


# --- the bulk tables --------------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND schema_name = 'main' ORDER BY 1").fetchall()]


def _read_everything(con: duckdb.DuckDBPyConnection, tables: list[str]) -> list[str]:
    """Read every column of every row (hashing each row makes DuckDB read, and checksum, every block)."""
    problems = []
    for table in tables:
        try:
            con.execute(f'SELECT count(*), bit_xor(hash(t)) FROM "{table}" AS t').fetchall()
        except duckdb.Error as e:
            problems.append(f"table {table} cannot be read: {str(e).splitlines()[0]}")
    return problems


def _ingest_accounts(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[str]:
    """Each ingested file's stored rows are exactly those it accepted, each line once; no orphan rows."""
    if not {"packages", "ingest_files", "quarantine", LEADS.table, VISITS.table} <= tables:
        return []
    problems = []
    for spec in (LEADS, VISITS):
        for package, file, accepted, stored, lines in con.execute(f"""
            SELECT f.package_id, f.file, f.accepted, count(t.line), count(DISTINCT t.line)
            FROM ingest_files f LEFT JOIN {spec.table} t ON t.package_id = f.package_id
            WHERE {'f.file = ?' if spec is VISITS else 'f.file <> ?'}
            GROUP BY ALL HAVING count(t.line) <> f.accepted OR count(DISTINCT t.line) <> count(t.line)
            ORDER BY 1, 2""", [VISITS.file]).fetchall():
            problems.append(f"package {package} {file}: {accepted:,} rows accepted, {stored:,} stored"
                            + (f" ({stored - lines:,} twice)" if stored != lines else ""))
        for package, n in con.execute(f"""
            SELECT package_id, count(*) FROM {spec.table}
            WHERE package_id NOT IN (SELECT package_id FROM packages) GROUP BY 1 ORDER BY 1""").fetchall():
            problems.append(f"{n:,} {spec.table} rows of package {package}, which no ingest recorded")
    for package, file, quarantined, lines in con.execute("""
        SELECT f.package_id, f.file, f.quarantined, count(DISTINCT q.line)
        FROM ingest_files f LEFT JOIN quarantine q ON q.package_id = f.package_id AND q.file = f.file
        GROUP BY ALL HAVING count(DISTINCT q.line) <> f.quarantined ORDER BY 1, 2""").fetchall():
        problems.append(f"package {package} {file}: {quarantined:,} rows quarantined, {lines:,} kept")
    for package, in con.execute("""SELECT package_id FROM packages
                                   WHERE package_id NOT IN (SELECT package_id FROM ingest_files)""").fetchall():
        problems.append(f"package {package} is recorded without its files")
    if "reference_loads" in tables:
        for spec in REFERENCE:
            if spec.table not in tables:
                continue
            loaded = con.execute("SELECT accepted FROM reference_loads WHERE file = ?", [spec.file]).fetchall()
            (stored,), = con.execute(f"SELECT count(*) FROM {spec.table}").fetchall()
            if loaded and loaded[0][0] != stored:
                problems.append(f"{spec.file}: {loaded[0][0]:,} rows accepted, {stored:,} stored")
            elif not loaded and stored:
                problems.append(f"{spec.table} holds {stored:,} rows that no reference load recorded")
    return problems


def bulk_tables(ws: Workspace) -> Check:
    """The DuckDB file opens, reads to the end, and its ingest accounts balance."""
    name = "bulk tables"
    if not ws.duckdb_path.exists():
        return _check(name, "ok", "no bulk tables yet (nothing ingested)")
    lock = _try_lock(ws)
    if lock is None:
        return _check(name, "warn", f"not checked: {_holder_text(ws)} holds the workspace",
                      "Run the doctor again when it has finished.")
    try:
        try:
            con = duckdb.connect(str(ws.duckdb_path), read_only=True)
        except duckdb.Error as e:
            return _check(name, "fail", f"{ws.duckdb_path} does not open: {str(e).splitlines()[0]}",
                          "Restore ore.duckdb from the last backup, or re-ingest the packages into a new "
                          "workspace with the same card key.")
        try:
            tables = _tables(con)
            problems = _read_everything(con, tables)
            if not problems:
                problems = _ingest_accounts(con, set(tables))
        finally:
            con.close()
    finally:
        lock.release()
    if problems:
        return _check(name, "fail", f"{ws.duckdb_path.name}: {_listed(problems)}",
                      "Keep this copy as evidence; restore ore.duckdb from the last backup, or re-ingest the "
                      "packages named into a new workspace with the same card key.")
    return _check(name, "ok", f"{ws.duckdb_path.name}: {len(tables)} tables read in full; ingest accounts balance")


# --- runs that did not finish, and what they left ----------------------------------------------


def _try_lock(ws: Workspace) -> FileLock | None:
    """The workspace lock if it is free within a moment; never creates the lock file."""
    path = ws.root / ".lock"
    if not path.exists():
        return _NoLock()  # type: ignore[return-value]
    lock = FileLock(str(path), timeout=LOCK_WAIT_SECONDS)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


class _NoLock:
    """Stands in for the lock of a workspace no command has locked yet."""

    def release(self) -> None:
        return None


def _holder(ws: Workspace) -> dict[str, object] | None:
    path = ws.root / ".lock.holder"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"purpose": "an ore command", "pid": "?", "since": "?"}


def _holder_text(ws: Workspace) -> str:
    h = _holder(ws) or {}
    return f"`{h.get('purpose', 'another ore process')}` (pid {h.get('pid', '?')}, since {h.get('since', '?')})"


def unfinished_run(ws: Workspace) -> Check:
    """A holder note with the lock free: the process that wrote it died before it could finish."""
    name = "unfinished run"
    if _holder(ws) is None:
        return _check(name, "ok", "no run was interrupted")
    lock = _try_lock(ws)
    if lock is None:
        return _check(name, "ok", f"{_holder_text(ws)} is running now")
    try:
        if _holder(ws) is None:  # it finished while we waited
            return _check(name, "ok", "no run was interrupted")
        return _check(name, "warn", f"{_holder_text(ws)} stopped before it finished (killed, or the machine "
                      "went down); what it committed is whole, its later steps did not run",
                      "Run the same command again: it resumes without duplicating anything. Then run "
                      "`ore doctor` again.")
    finally:
        lock.release()


def leftovers(ws: Workspace) -> Check:
    """Temporary files of killed runs: unpacked packages, half-written lead packages, keys, DuckDB spill."""
    name = "leftover files"
    found = [p for pattern in ("tmp/unpack-*", "tmp/duckdb_temp_*", "tmp/*.tmp", "keys/.new-*", "watch/*/.WATCH-*",
                                "watch/*/.summary.json.tmp")
             for p in sorted(ws.root.glob(pattern))]
    if not found:
        return _check(name, "ok", "no temporary files of interrupted runs")
    clear = [p for p in found if p.name.startswith(("unpack-", ".WATCH-"))]
    shown = [str(p.relative_to(ws.root)) for p in found]
    return _check(name, "warn", f"{len(found)} temporary file(s) of interrupted runs: {_listed(shown)}"
                  + (" (some hold clear card numbers)" if clear else ""),
                  "Re-run the interrupted command (ingest and watch screen remove their own), or delete "
                  "them while no ore command runs.")


def integrity_checks(ws: Workspace, engine: Engine | None) -> list[Check]:
    """Every integrity check; ``engine`` is the case store's when it is reachable at the head schema."""
    checks = [case_store_integrity(engine)] if engine is not None else []
    if ws.root.is_dir():
        checks += [bulk_tables(ws), unfinished_run(ws), leftovers(ws)]
    return checks


__all__ = ["bulk_tables", "case_store_integrity", "integrity_checks", "leftovers", "unfinished_run"]

