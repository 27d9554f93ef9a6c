"""Backup and restore of a workspace: case store, DuckDB bulk tables, keys and an audit checkpoint.

A backup is one tar file, written mode 0600, holding:

- ``cases.sqlite``: the SQLite case store, copied with SQLite's online backup API (a
  consistent snapshot even while the web application writes; never a raw copy of a
  live WAL database), or ``cases.pgdump`` (``pg_dump --format=custom``) for PostgreSQL;
- ``ore.duckdb``: checkpointed and copied while the workspace lock is held (every DuckDB
  connection takes the lock, so nothing writes it meanwhile);
- ``keys/``: the card-token keys and the signing key, unless ``--without-keys`` (then
  they are backed up apart, as docs/operator.md advises);
- ``audit-checkpoint.json``: the copy's audit chain head, signed with the workspace key;
- ``manifest.json``: the SHA-256 and size of every file, ore's version, the schema
  revision, the audit head, the time, and a warning when the keys are inside.

``verify`` checks the hashes, that the case store opens and its audit chain verifies up
to the head the manifest records, that the DuckDB file opens, and the checkpoint's
signature. ``restore`` verifies first, refuses a non-empty workspace without ``force``,
puts the files in place, verifies again, checks the log against the operator's kept
checkpoint (an older backup shows as a rollback), and records itself in the audit log,
as ``backup`` does (its entry is inside the copy it describes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.engine import make_url

from ore import __version__
from ore.errors import OreError
from ore.workspace import Workspace

FORMAT = "ore-backup/1"
MANIFEST = "manifest.json"
CHECKPOINT = "audit-checkpoint.json"
SQLITE = "cases.sqlite"
PGDUMP = "cases.pgdump"
DUCKDB = "ore.duckdb"
KEYS_WARNING = ("This backup holds the card-token keys (keys/card-v*.key) and the signing key: with a key and a "
                "card number anyone can tell whether that card is in ore's data, and sign packages in the unit's "
                "name. Keep it encrypted, offline, under the information-security officer's control.")
NO_KEYS_NOTE = ("This backup holds no keys (--without-keys): restore keys/ from the separate key backup, or no "
                "new data will link to the tokens held.")
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sqlite_file(ws: Workspace) -> Path | None:
    from ore.store.engine import normalise_url

    u = make_url(normalise_url(ws.database_url))
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database else None


def _libpq_url(url: str) -> str:
    """The URL as pg_dump reads it (no SQLAlchemy driver name)."""
    from ore.store.engine import normalise_url

    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def _remove_stale(ws: Workspace) -> None:
    """Staging left by a backup or restore that was killed holds keys and personal data: it goes now.

    Call under the workspace lock: every staging directory is made under it, so none is in use.
    """
    for prefix in ("backup-", "restore-"):
        for stale in ws.tmp.glob(f"{prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _staging(ws: Workspace | None, prefix: str) -> Iterator[Path]:
    """A private directory (mode 0700) inside the workspace, so files move in by rename, else in the system's
    temporary directory; removed after, with whatever keys were unpacked into it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=ws.tmp if ws is not None else None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while others read and write (WAL included)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
    finally:
        dst.close()
        src.close()


def _dump_postgresql(url: str, target: Path) -> None:
    if shutil.which("pg_dump") is None:
        raise OreError("the case store is PostgreSQL and pg_dump is not on PATH: install the PostgreSQL client "
                       "tools (the server's major version or newer), or back the database up with your own "
                       "database tooling and back up the workspace with --without-store")
    done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _libpq_url(url)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OreError(f"pg_dump failed: {done.stderr.strip()[:500]}")


def _copy_duckdb(ws: Workspace, target: Path) -> None:
    """Checkpoint (the write-ahead log into the file), then copy the file; the caller holds the lock."""
    with ws.duckdb() as con:
        con.execute("CHECKPOINT")
    shutil.copy2(ws.duckdb_path, target)


def _audit_head(url: str) -> dict[str, Any]:
    """The verified audit head and schema revision of the case store at ``url``; refuses a broken chain."""
    from ore.audit import verify_chain
    from ore.store import current_revision, open_store

    store = open_store(url, upgrade=False)
    try:
        with store.session() as s:
            v = verify_chain(s)
        revision = current_revision(store.engine)
    finally:
        store.dispose()
    if not v.ok:
        raise OreError(f"the audit log does not verify ({v.problem}); back up nothing over it: keep this copy as "
                       "evidence and see docs/operator.md, Logs and monitoring")
    return {"seq": v.last_seq, "hash": v.last_hash, "entries": v.entries, "schema": revision}


def _record(ws: Workspace, *, user: str, action: str, category: str, purpose: str, objects: list[str],
            detail: dict[str, Any], outcome: str = "ok") -> None:
    from ore.audit import record
    from ore.store import store_for

    store = store_for(ws)
    try:
        with store.session() as s:
            record(s, user=user, action=action, category=category, objects=objects, purpose=purpose, detail=detail,
                   outcome=outcome)
    finally:
        store.dispose()


def backup(ws: Workspace, out: Path, *, user: str, purpose: str = "administration", keys: bool = True,
           store: bool = True) -> dict[str, Any]:
    """Write a verified backup of ``ws`` to ``out`` (mode 0600); returns its manifest."""
    out = Path(out).expanduser().resolve()
    if out.exists():
        raise OreError(f"{out} exists: a backup never overwrites a file (give a new name)")
    if not out.parent.is_dir():
        raise OreError(f"{out.parent} is not a directory")
    if ws.root == out.parent or ws.root in out.parents:
        raise OreError(f"{out} is inside the workspace: write the backup elsewhere")
    what = {"file": str(out), "keys": keys, "store": store}
    with ws.lock(f"backup to {out.name}"):
        _remove_stale(ws)
        # the entry goes in first, so that the copy holds the record of its own making
        _record(ws, user=user, action="ops.backup", category="disclosure", purpose=purpose, objects=[out.name],
                detail=what)
        try:
            return _backup(ws, out, keys=keys, store=store)
        except BaseException as e:
            _record(ws, user=user, action="ops.backup", category="disclosure", purpose=purpose, objects=[out.name],
                    detail=what, outcome=f"failed: {e}"[:2000])
            raise


def _backup(ws: Workspace, out: Path, *, keys: bool, store: bool) -> dict[str, Any]:
    from ore.audit import make_checkpoint, write_checkpoint
    from ore.audit.checkpoint import checkpoint_of, kept_checkpoint
    from ore.report.package_sign import signing_key
    from ore.store import head_revision, open_store

    sqlite_path = _sqlite_file(ws)
    key = signing_key(ws)  # made now if it is not yet, so the backup holds the key its checkpoint needs
    with _staging(ws, "backup-") as stage:
        files: list[str] = []
        head: dict[str, Any] | None = None
        checkpoint: dict[str, Any] | None = None
        if store and sqlite_path is not None:
            _copy_sqlite(sqlite_path, stage / SQLITE)
            files.append(SQLITE)
            head = _audit_head(f"sqlite:///{stage / SQLITE}")
            copy = open_store(f"sqlite:///{stage / SQLITE}", upgrade=False)
            try:
                with copy.session() as s:
                    checkpoint = make_checkpoint(s, key)  # of the copy's own head
            finally:
                copy.dispose()
        elif store:
            # PostgreSQL: the head read before the dump, which the dump is sure to hold (later entries may be
            # in it too), so a restore of this backup never looks behind its own checkpoint
            head = _audit_head(ws.database_url)
            _dump_postgresql(ws.database_url, stage / PGDUMP)
            files.append(PGDUMP)
            checkpoint = checkpoint_of(head["seq"], head["hash"], key)
        if ws.duckdb_path.exists():
            _copy_duckdb(ws, stage / DUCKDB)
            files.append(DUCKDB)
        if keys:
            (stage / "keys").mkdir(mode=0o700)
            for p in sorted((ws.root / "keys").iterdir()):
                if p.is_file() and not p.name.startswith("."):
                    shutil.copy2(p, stage / "keys" / p.name)
                    files.append(f"keys/{p.name}")
        if checkpoint is not None:
            write_checkpoint(stage / CHECKPOINT, checkpoint)
            files.append(CHECKPOINT)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "ore_version": __version__,
            "schema_head": head_revision(),
            "schema": head["schema"] if head else None,
            "store": "none" if not store else "sqlite" if sqlite_path is not None else "postgresql",
            "audit_head": {k: head[k] for k in ("seq", "hash", "entries")} if head else None,
            "keys_included": keys,
            "key_versions": sorted(ws.card_key_files()),
            "notice": KEYS_WARNING if keys else NO_KEYS_NOTE,
            "files": {name: {"sha256": _sha256(stage / name), "bytes": (stage / name).stat().st_size}
                      for name in files},
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _write_tar(out, stage, [MANIFEST, *files])
    if checkpoint is not None and (kept := kept_checkpoint(ws.settings)) is not None:
        write_checkpoint(kept, checkpoint)
    return manifest


def _write_tar(out: Path, stage: Path, names: list[str]) -> None:
    """The archive, private from its first byte (created 0600), whole under its name or not at all."""
    tmp = out.with_name(f".{out.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in names:
                    info = tar.gettarinfo(str(stage / name), arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o600
                    with open(stage / name, "rb") as data:
                        tar.addfile(info, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


# --- verification -------------------------------------------------------------------------------


@dataclass
class Verification:
    """What was checked of a backup, each with what was found; ``ok`` when nothing failed."""

    manifest: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))

    @property
    def problems(self) -> list[str]:
        return [f"{name}: {detail}" for name, ok, detail in self.checks if not ok]


def _extract(archive: Path, into: Path) -> dict[str, Any]:
    """Unpack a backup, refusing anything but regular files under plain relative names; returns the manifest."""
    try:
        tar = tarfile.open(archive, mode="r:")
    except (tarfile.TarError, OSError) as e:
        raise OreError(f"{archive} is not an ore backup (not a tar file: {e})") from None
    with tar:
        members = tar.getmembers()
        for m in members:
            parts = Path(m.name).parts
            if not m.isfile() or Path(m.name).is_absolute() or ".." in parts or len(parts) > 2 or (
                    len(parts) == 2 and parts[0] != "keys"):
                raise OreError(f"{archive}: unexpected entry {m.name!r}: not an ore backup, or tampered with")
        if MANIFEST not in {m.name for m in members}:
            raise OreError(f"{archive}: no {MANIFEST}: not an ore backup")
        (into / "keys").mkdir(mode=0o700, exist_ok=True)
        tar.extractall(into, filter="data")
    try:
        manifest = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
    except ValueError:
        raise OreError(f"{archive}: {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OreError(f"{archive}: {MANIFEST} is not of format {FORMAT}")
    return manifest


def _verify_unpacked(root: Path, manifest: dict[str, Any], v: Verification) -> None:
    from ore.audit import check_checkpoint, read_checkpoint, verify_chain
    from ore.audit.checkpoint import workspace_public_key
    from ore.store import open_store

    listed = manifest.get("files") or {}
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    extra, missing = present - set(listed), set(listed) - present
    v.add("files", not extra and not missing,
          f"{len(listed)} files as listed" if not extra and not missing else
          f"missing {sorted(missing)}, not listed {sorted(extra)}")
    bad = [name for name, meta in listed.items() if name in present and _sha256(root / name) != meta.get("sha256")]
    v.add("hashes", not bad, "every SHA-256 matches" if not bad else f"SHA-256 differs: {', '.join(sorted(bad))}")
    if bad or missing:
        return
    if SQLITE in listed:
        con = sqlite3.connect(f"file:{root / SQLITE}?mode=ro", uri=True)
        try:
            integrity = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
        v.add("case store", integrity == [("ok",)], "SQLite integrity check ok" if integrity == [("ok",)]
              else f"SQLite integrity check: {integrity[:3]}")
        store = open_store(f"sqlite:///{root / SQLITE}", upgrade=False)
        try:
            with store.session() as s:
                chain = verify_chain(s)
                head = manifest.get("audit_head") or {}
                same = chain.ok and chain.last_seq == head.get("seq") and chain.last_hash == head.get("hash")
                v.add("audit chain", same, f"{chain.entries:,} entries, intact up to entry {chain.last_seq}" if same
                      else chain.problem or f"ends at entry {chain.last_seq}, the manifest says {head.get('seq')}")
                key = workspace_public_key(root / "keys")
                if (root / CHECKPOINT).exists() and key is not None:
                    c = check_checkpoint(s, read_checkpoint(root / CHECKPOINT), key)
                    v.add("checkpoint", c.ok, c.message)
        finally:
            store.dispose()
    elif PGDUMP in listed:
        v.add("case store", (root / PGDUMP).stat().st_size > 0, "PostgreSQL dump present (pg_restore checks it "
              "on restore)")
    if DUCKDB in listed:
        try:
            con_d = duckdb.connect(str(root / DUCKDB), read_only=True)
            try:
                n = con_d.execute("SELECT count(*) FROM information_schema.tables").fetchall()[0][0]
            finally:
                con_d.close()
            v.add("bulk tables", True, f"ore.duckdb opens ({n} tables)")
        except duckdb.Error as e:
            v.add("bulk tables", False, f"ore.duckdb does not open: {e}")


def verify(archive: Path) -> Verification:
    """Check a backup without restoring it (nor needing a workspace): hashes, the copy opens, its chain verifies."""
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise OreError(f"{archive}: no such backup file")
    v = Verification()
    with _staging(None, "ore-verify-") as stage:
        v.manifest = _extract(archive, stage)
        _verify_unpacked(stage, v.manifest, v)
    return v


# --- restore --------------------------------------------------------------------------------------


@dataclass
class Restored:
    manifest: dict[str, Any]
    checks: Verification
    rollback: str | None = None  # set when the restored log is behind the operator's checkpoint
    checkpoint: str = ""  # what the checkpoint check found
    warnings: list[str] = field(default_factory=list)


_REPLACED = ("cases.sqlite", "cases.sqlite-wal", "cases.sqlite-shm", "ore.duckdb", "ore.duckdb.wal")


def _is_empty(root: Path) -> bool:
    if not root.exists():
        return True
    ignorable = {"keys", "tmp", ".lock"}  # what opening a workspace makes, empty
    for p in root.iterdir():
        if p.name in ignorable and (p.is_file() or not any(p.iterdir())):
            continue
        return False
    return True


def restore(archive: Path, target: Path, *, settings: Any, user: str, purpose: str = "administration",
            force: bool = False, checkpoint: Path | None = None) -> Restored:
    """Restore a backup into the workspace ``target``; see the module docstring."""
    archive = Path(archive).expanduser().resolve()
    if not archive.is_file():
        raise OreError(f"{archive}: no such backup file")
    target = Path(target).expanduser().resolve()
    if not _is_empty(target) and not force:
        raise OreError(f"workspace {target} is not empty: restoring would replace what it holds. Restore into an "
                       "empty directory, or give --force (back the current one up first)")
    ws = Workspace.open(target, settings)
    with ws.lock(f"restore from {archive.name}"):
        _remove_stale(ws)
        return _restore(ws, archive, target, settings=settings, user=user, purpose=purpose, force=force,
                        checkpoint=checkpoint)


def _restore(ws: Workspace, archive: Path, target: Path, *, settings: Any, user: str, purpose: str, force: bool,
             checkpoint: Path | None) -> Restored:
    from ore.audit import verify_chain
    from ore.audit.checkpoint import check_kept_checkpoint, kept_checkpoint
    from ore.store import store_for

    with _staging(ws, "restore-") as stage:
        manifest = _extract(archive, stage)
        checks = Verification(manifest)
        _verify_unpacked(stage, manifest, checks)
        if not checks.ok:
            raise OreError(f"{archive} fails verification, nothing was restored: " + "; ".join(checks.problems))
        sqlite_target = _sqlite_file(ws)
        kind = manifest.get("store")
        if kind == "sqlite" and sqlite_target is None:
            raise OreError("the backup holds a SQLite case store but ORE_DATABASE_URL names another database: "
                           "unset it to restore into the workspace, or restore the SQLite file by hand")
        if kind == "postgresql" and sqlite_target is not None:
            raise OreError("the backup holds a PostgreSQL dump: set ORE_DATABASE_URL to the (empty) database to "
                           "restore it into")
        result = Restored(manifest, checks)
        replaced = _replaced_head(ws, sqlite_target) if kind != "none" else None
        for name in _REPLACED:
            (target / name).unlink(missing_ok=True)
        shutil.rmtree(target / "sessions", ignore_errors=True)  # sign-ins of the store being replaced
        if kind == "sqlite":
            assert sqlite_target is not None
            os.replace(stage / SQLITE, sqlite_target)
        elif kind == "postgresql":
            _restore_postgresql(stage / PGDUMP, ws.database_url, force)
        if (stage / DUCKDB).exists():
            os.replace(stage / DUCKDB, ws.duckdb_path)
        if manifest.get("keys_included"):
            for p in (ws.root / "keys").glob("*"):
                if p.is_file():
                    p.unlink()
            for p in (stage / "keys").iterdir():
                os.replace(p, ws.root / "keys" / p.name)
        else:
            result.warnings.append(NO_KEYS_NOTE)
        if kind == "none":  # the case store is restored by the operator's own tooling: still on its record
            try:
                _record(ws, user=user, action="ops.restore", category="alteration", purpose=purpose,
                        objects=[archive.name], detail={"file": str(archive), "store": "not in the backup"})
            except OreError as e:
                result.warnings.append(f"the restore could not be recorded in the audit log ({e}); record it "
                                       "once the case store is back")
        else:
            store = store_for(ws)  # brings an older backup's schema to this ore's head
            try:
                with store.session() as s:
                    chain = verify_chain(s)
                    if not chain.ok:
                        raise OreError(f"the restored audit log does not verify: {chain.problem}")
                    kept = checkpoint or kept_checkpoint(settings)
                    if kept is not None:
                        c = check_kept_checkpoint(s, kept, ws.root / "keys")
                        result.checkpoint = c.message
                        if c.rollback:
                            result.rollback = c.message
                    else:
                        result.checkpoint = "no checkpoint to compare with (set ORE_AUDIT_CHECKPOINT)"
                    if replaced is not None:
                        behind, diverged = _behind(s, replaced)
                        result.rollback = result.rollback or behind
                        result.warnings += [diverged] if diverged else []
            finally:
                store.dispose()
            _record(ws, user=user, action="ops.restore", category="alteration", purpose=purpose,
                    objects=[archive.name], detail={"file": str(archive), "backup_created_at": manifest.get(
                        "created_at"), "backup_audit_head": manifest.get("audit_head"),
                        "checkpoint": result.checkpoint, "rollback": result.rollback is not None})
    return result


def _replaced_head(ws: Workspace, sqlite_target: Path | None) -> tuple[int, str] | None:
    """The audit head of the case store about to be replaced (``--force``), if it opens and verifies."""
    from ore.audit import verify_chain
    from ore.store import open_store

    if sqlite_target is not None and not sqlite_target.exists():
        return None
    try:
        store = open_store(ws.database_url, upgrade=False)
    except OreError:
        return None
    try:
        with store.session() as s:
            v = verify_chain(s)
    except Exception:  # noqa: BLE001 - an empty or foreign database has no head to keep
        return None
    finally:
        store.dispose()
    return (v.last_seq, v.last_hash) if v.ok and v.last_seq else None


def _behind(session: Any, head: tuple[int, str]) -> tuple[str | None, str | None]:
    """(rollback, warning) from comparing the restored log with the replaced store's last entry.

    Shorter than the replaced log: an older copy replaced a newer one (a rollback). As long or
    longer but without that entry unchanged: the replaced store had diverged (say, an older
    copy restored and written to), and its entries from there on are gone (a warning).
    """
    from sqlalchemy import func, select

    from ore.store.access import AuditEntry

    seq, digest = head
    last = session.scalar(select(func.max(AuditEntry.seq))) or 0
    if last < seq:
        return (f"ROLLBACK: the case store this restore replaced had its audit log at entry {seq}; the restored "
                f"one ends at entry {last}: an older copy replaced a newer one"), None
    entry = session.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
    if entry is not None and entry.hash == digest:
        return None, None
    return None, (f"the case store this restore replaced had a different entry {seq}: its history had diverged "
                  "from this backup's, and its entries from there on are not in the restored store")


def _restore_postgresql(dump: Path, url: str, force: bool) -> None:
    from sqlalchemy import inspect

    from ore.store.engine import make_engine

    if shutil.which("pg_restore") is None:
        raise OreError("pg_restore is not on PATH: install the PostgreSQL client tools, or restore "
                       f"{PGDUMP} with your own database tooling")
    engine = make_engine(url)
    try:
        has_tables = bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if has_tables and not force:
        raise OreError("the PostgreSQL database of ORE_DATABASE_URL is not empty: restore into an empty database, "
                       "or give --force to replace its ore tables")
    args = ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq_url(url)}"]
    if has_tables:
        args += ["--clean", "--if-exists"]
    done = subprocess.run([*args, str(dump)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OreError(f"pg_restore failed: {done.stderr.strip()[:500]}")
