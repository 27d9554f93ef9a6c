"""``ore doctor``: is this deployment fit to run, and if not, what to fix.

Each check looks at one thing an operator can put right (the case store reachable and at the
newest schema, the card-token key present and private, the audit chain intact, room on the
disk, a workspace ore can write; after a crash, the stores whole and no run left unfinished:
``ore.ops.integrity``) and says what it found and, when it is not right, what to do. Nothing here changes the deployment: the doctor opens no new files in the workspace,
migrates nothing and creates no key, so running it on a broken deployment cannot make it
worse. It reads the audit chain but shows no entry of it, only where it breaks.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from ore import __version__
from ore.config import get_settings
from ore.errors import OreError
from ore.workspace import KEY_BYTES, Workspace

Status = Literal["ok", "warn", "fail"]
GIB = 1024**3
# Below this much free space a triage can fail half-way (a 400,000-record run writes about 2 GB of
# DuckDB tables and Splink temporary files); below the warning level, plan for more.
MIN_FREE_GIB = 2.0
WARN_FREE_GIB = 10.0
VERSIONED = ("duckdb", "splink", "sqlalchemy", "alembic", "fastapi", "pydantic")


@dataclass(frozen=True)
class Check:
    """One thing checked: what was found, and what to do when it is not ``ok``."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass
class DoctorReport:
    workspace: str
    checks: list[Check] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No check failed (warnings do not fail a deployment)."""
        return all(c.status != "fail" for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "workspace": self.workspace, "checks": [asdict(c) for c in self.checks],
                "versions": self.versions}


def as_workspace(workspace: Workspace | Path | str | None) -> Workspace:
    """The workspace to look at, without creating it (``Workspace.open`` would make the directory)."""
    if isinstance(workspace, Workspace):
        return workspace
    settings = get_settings()
    root = Path(workspace) if workspace is not None else settings.workspace
    return Workspace(root.expanduser().resolve(), settings)


def _shown_url(url: str) -> str:
    from ore.store.engine import normalise_url

    return make_url(normalise_url(url)).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    from ore.store.engine import normalise_url

    u = make_url(normalise_url(url))
    if u.get_backend_name() != "sqlite":
        return None
    return Path(u.database) if u.database and u.database != ":memory:" else None


def _engine(url: str) -> Engine:
    """An engine that gives up on an unreachable server in seconds, not minutes."""
    from ore.store.engine import make_engine, normalise_url

    if make_url(normalise_url(url)).get_backend_name() == "sqlite":
        return make_engine(url)
    return create_engine(normalise_url(url), pool_pre_ping=True, connect_args={"connect_timeout": 5})


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from ore.store.engine import _alembic_config

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}


def _store_state(ws: Workspace) -> tuple[Check, Engine | None]:
    """Reachable, and at the newest schema? Returns the engine only when both hold."""
    from ore.store.engine import current_revision, head_revision

    url = ws.database_url
    shown = _shown_url(url)
    head = head_revision()
    sqlite = _sqlite_file(url)
    if sqlite is not None and not sqlite.exists():
        return Check("case store", "fail", f"no case store at {sqlite}",
                     "If this workspace had one, restore it from the backup (docs/operator.md, Backup and "
                     "restore); a new workspace gets one from the first command that opens it "
                     "(e.g. `ore users list`)."), None
    engine = _engine(url)
    try:
        current = current_revision(engine)
    except Exception as e:  # noqa: BLE001 - any failure to connect is the finding
        engine.dispose()
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        return Check("case store", "fail", f"cannot reach the case store at {shown}: {reason}",
                     "Check ORE_DATABASE_URL (host, port, database, user, password), that the server runs "
                     "and accepts connections from this host."), None
    if current == head:
        return Check("case store", "ok", f"{shown}: schema {current} (head)"), engine
    engine.dispose()
    if current is None:
        return Check("case store", "fail", f"{shown} is reachable but holds no ore schema (head is {head})",
                     "Point ORE_DATABASE_URL at ore's database; for a new one, run any command that opens the "
                     "case store (e.g. `ore users list`) as the database owner: ore creates the schema."), None
    if current not in _known_revisions():
        return Check("case store", "fail",
                     f"{shown} is at schema {current}, which this ore ({__version__}, head {head}) does not know: "
                     "a newer ore upgraded it", "Install the ore version that upgraded it (see CHANGELOG.md); "
                     "never run an older ore on a newer schema."), None
    return Check("case store", "fail", f"{shown} is at schema {current}; this ore needs {head}",
                 "Back up the case store, then run any command that opens it (e.g. `ore users list`) as the "
                 "database owner: ore upgrades it to the head (docs/operator.md, Upgrades)."), None


def _audit(engine: Engine) -> Check:
    from sqlalchemy.orm import sessionmaker

    from ore.audit import verify_chain
    from ore.store.engine import Store

    try:
        with Store(engine, sessionmaker(engine, expire_on_commit=False)).session() as s:
            v = verify_chain(s)
    except Exception as e:  # noqa: BLE001 - reported, not raised: the other checks still run
        return Check("audit chain", "fail", f"could not read the audit log: {e}",
                     "Check the database user's rights (the tables' owner runs the doctor).")
    if v.ok:
        return Check("audit chain", "ok", f"{v.entries:,} entries, intact up to entry {v.last_seq}")
    return Check("audit chain", "fail", f"broken at entry {v.first_bad}: {v.problem}",
                 "Do not repair it in place: keep this copy as evidence, compare it with the last checkpoint "
                 "(`ore audit verify --checkpoint FILE`) and the backups, and report it (docs/operator.md, "
                 "Logs and monitoring).")


def _kept_checkpoint(ws: Workspace, engine: Engine) -> Check | None:
    """Does the log still reach the operator's checkpoint (ORE_AUDIT_CHECKPOINT)? Behind it is a rollback."""
    from sqlalchemy.orm import sessionmaker

    from ore.audit.checkpoint import check_kept_checkpoint, kept_checkpoint
    from ore.store.engine import Store

    path = kept_checkpoint(ws.settings)
    if path is None:
        return None
    if not path.exists():
        return Check("audit checkpoint", "warn", f"no checkpoint at {path} yet", "Run `ore backup`: it writes one.")
    try:
        with Store(engine, sessionmaker(engine, expire_on_commit=False)).session() as s:
            c = check_kept_checkpoint(s, path, ws.root / "keys")
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return Check("audit checkpoint", "fail", f"could not check {path}: {e}", "See docs/operator.md, Backup and "
                     "restore.")
    if c.ok:
        return Check("audit checkpoint", "ok", c.message)
    return Check("audit checkpoint", "fail", c.message,
                 "An older copy of the case store is in use (or entries were removed): keep this copy and the "
                 "checkpoint as evidence, find the newest backup (docs/operator.md, Backup and restore)."
                 if c.rollback else "Check ORE_AUDIT_CHECKPOINT names this workspace's checkpoint.")


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _rotation(ws: Workspace) -> list[Check]:
    """A key rotation left half done: new cards are tokenised twice until the stored tokens are re-keyed."""
    try:
        stored, nxt = ws.tokenising_version(), ws.next_card_key()
    except OreError as e:
        return [Check("key rotation", "fail", str(e), "Restore keys/ from the operator's backup.")]
    if nxt is None:
        return []
    return [Check("key rotation", "warn", f"in progress: stored card tokens are under key v{stored}; new cards are "
                  f"tokenised under v{stored} and v{nxt[0]}",
                  "Finish it: `ore keys status` lists what still lacks a new-key token; read those again, then "
                  "`ore keys rekey` (docs/operator.md, Key management).")]


def _keys(ws: Workspace) -> list[Check]:
    keys_dir = ws.root / "keys"
    found = sorted(keys_dir.glob("card-v*.key")) if keys_dir.is_dir() else []
    checks: list[Check] = []
    if not found:
        if ws.duckdb_path.exists():
            checks.append(Check("card key", "fail", f"no card-token key in {keys_dir}, but the workspace holds data "
                                "tokenised under one", "Restore keys/ from the operator's backup. Do not let ore "
                                "make a new key: tokens made under it would match none of the data already held."))
        else:
            checks.append(Check("card key", "warn", f"no card-token key yet in {keys_dir}",
                                "The first ingest makes keys/card-v1.key: back it up as soon as it exists "
                                "(docs/operator.md, Key management)."))
    bad_mode, damaged = [], []
    for p in found:
        if not _private(p):
            bad_mode.append(f"{p.name} ({stat.S_IMODE(p.stat().st_mode):04o})")
        if p.stat().st_size != KEY_BYTES:
            damaged.append(f"{p.name} ({p.stat().st_size} bytes)")
    if damaged:
        checks.append(Check("card key", "fail", f"damaged key file(s), expected {KEY_BYTES} bytes: "
                            + ", ".join(damaged), "Restore the key file(s) from the operator's backup; do not "
                            "delete them: tokens made under another key match nothing."))
    if bad_mode:
        checks.append(Check("card key", "fail", "readable by others: " + ", ".join(bad_mode),
                            f"chmod 600 {keys_dir}/card-v*.key (and chmod 700 {keys_dir}), owned by the account "
                            "that runs ore."))
    if found and not damaged and not bad_mode:
        versions = ", ".join(p.name for p in found)
        checks.append(Check("card key", "ok", f"{versions} (mode 0600)"))
        checks.extend(_rotation(ws))
    signing = keys_dir / "signing-ed25519.pem"
    if signing.exists() and not _private(signing):
        checks.append(Check("signing key", "fail",
                            f"{signing.name} is readable by others ({stat.S_IMODE(signing.stat().st_mode):04o})",
                            f"chmod 600 {signing}: whoever reads it can sign packages in this unit's name."))
    if keys_dir.is_dir() and stat.S_IMODE(keys_dir.stat().st_mode) & 0o077:
        checks.append(Check("keys directory", "warn",
                            f"{keys_dir} is open to others ({stat.S_IMODE(keys_dir.stat().st_mode):04o})",
                            f"chmod 700 {keys_dir}"))
    return checks


def _workspace_dir(ws: Workspace) -> Check:
    if not ws.root.exists():
        return Check("workspace", "fail", f"no workspace at {ws.root}",
                     "Give the right --workspace / ORE_WORKSPACE, or restore the workspace from the backup.")
    if not ws.root.is_dir():
        return Check("workspace", "fail", f"{ws.root} is not a directory", "Give the workspace directory.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".doctor-", dir=ws.root)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return Check("workspace", "fail", f"cannot write in {ws.root}: {e.strerror}",
                     "Run ore as the account that owns the workspace, or give that account write access.")
    return Check("workspace", "ok", f"{ws.root} is writable")


def _disk(ws: Workspace, min_free_gib: float, warn_free_gib: float) -> Check:
    where = ws.root if ws.root.exists() else ws.root.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free / GIB
    detail = f"{free:,.1f} GiB free at {where}"
    if free < min_free_gib:
        return Check("free disk", "fail", detail + f" (needs {min_free_gib:g} GiB at least)",
                     "Free space or move the workspace to a larger volume before the next triage.")
    if free < warn_free_gib:
        return Check("free disk", "warn", detail + f" (under {warn_free_gib:g} GiB)",
                     "A 400,000-record triage needs a few GiB of room: plan for more space.")
    return Check("free disk", "ok", detail)


def versions() -> dict[str, str]:
    """ore's version, Python's, the libraries a deployment depends on, and the schema head."""
    from ore.store.engine import head_revision

    found = {"ore": __version__, "python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["schema head"] = head_revision()
    return found


def run_checks(workspace: Workspace | Path | str | None = None, *, min_free_gib: float = MIN_FREE_GIB,
               warn_free_gib: float = WARN_FREE_GIB) -> DoctorReport:
    """Every check of a deployment, in the order an operator would fix them."""
    from ore.ops.integrity import integrity_checks  # DuckDB and the ingest specs: not for `ore --version`

    ws = as_workspace(workspace)
    report = DoctorReport(str(ws.root))
    report.checks.append(_workspace_dir(ws))
    state, engine = _store_state(ws)
    report.checks.append(state)
    if engine is not None:
        try:
            report.checks.append(_audit(engine))
            report.checks.extend(integrity_checks(ws, engine))
            if (kept := _kept_checkpoint(ws, engine)) is not None:
                report.checks.append(kept)
        finally:
            engine.dispose()
    else:
        report.checks.append(Check("audit chain", "fail", "not checked: the case store is not reachable at the head "
                                   "schema", "Fix the case store first."))
        report.checks.extend(integrity_checks(ws, None))
    report.checks.extend(_keys(ws))
    report.checks.append(_disk(ws, min_free_gib, warn_free_gib))
    report.versions = versions()
    return report


def version_text(workspace: Workspace | Path | str | None = None) -> str:
    """``ore --version``: ore's version, the schema head it ships and the workspace's schema.

    e.g. "ore 0.1.0 (schema 0002 head; workspace at 0002)". Never fails and never creates
    anything: a missing or unreachable case store is said, not raised.
    """
    from ore.store.engine import current_revision, head_revision

    head = head_revision()
    try:
        ws = as_workspace(workspace)
        sqlite = _sqlite_file(ws.database_url)
        if sqlite is not None and not sqlite.exists():
            where = "workspace has no case store yet"
        else:
            engine = _engine(ws.database_url)
            try:
                current = current_revision(engine)
            finally:
                engine.dispose()
            where = f"workspace at {current}" if current else "workspace database holds no ore schema"
    except Exception as e:  # noqa: BLE001 - --version must answer whatever state the store is in
        where = f"case store unreachable: {type(e).__name__}"
    return f"ore {__version__} (schema {head} head; {where})"
