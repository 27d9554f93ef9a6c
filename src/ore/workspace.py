"""The workspace: one directory holding all of ore's state for an operation.

It holds the DuckDB file of bulk tables, the case-store database (SQLite unless
``ORE_DATABASE_URL`` names another), and the card-token keys. Every command that
writes takes the workspace lock first, so two processes wait for each other
instead of corrupting a file.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from ore.config import Settings, get_settings
from ore.errors import OreError, WorkspaceBusy

KEY_BYTES = 32
STATE_FILE = "card-state.json"  # the key version of the stored tokens, once a re-key moved them


@dataclass(frozen=True)
class Workspace:
    root: Path
    settings: Settings
    # One lock object per Workspace: it counts re-entries, so a command holding the lock can open
    # connections (which take it too) without waiting for itself.
    _lock: FileLock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lock", FileLock(str(self.root / ".lock"), timeout=self.settings.lock_timeout))

    @classmethod
    def open(cls, root: Path | str | None = None, settings: Settings | None = None) -> Workspace:
        """Open (creating on first use) the workspace at ``root`` or the configured default."""
        settings = settings or get_settings()
        path = Path(root) if root is not None else settings.workspace
        path = path.expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise OreError(f"workspace {path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        (path / "keys").mkdir(mode=0o700, exist_ok=True)
        (path / "tmp").mkdir(exist_ok=True)
        return cls(path, settings)

    @property
    def duckdb_path(self) -> Path:
        return self.root / "ore.duckdb"

    @property
    def database_url(self) -> str:
        return self.settings.database_url or f"sqlite:///{self.root / 'cases.sqlite'}"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold the workspace exclusively; wait up to ``lock_timeout`` seconds for another process."""
        lock = self._lock
        holder = self.root / ".lock.holder"
        outermost = not lock.is_locked
        try:
            lock.acquire()
        except Timeout:
            who = holder.read_text(encoding="utf-8") if holder.exists() else "another ore process"
            raise WorkspaceBusy(
                f"workspace {self.root} is busy ({who.strip()}); waited {self.settings.lock_timeout:.0f} s. "
                "Try again when it finishes, or raise ORE_LOCK_TIMEOUT."
            ) from None
        try:
            if outermost:
                holder.write_text(
                    json.dumps({"pid": os.getpid(), "purpose": purpose, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}),
                    encoding="utf-8",
                )
            yield
        finally:
            if outermost:
                holder.unlink(missing_ok=True)
            lock.release()

    @contextmanager
    def duckdb(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the bulk-table database, holding the workspace lock; closed on exit.

        DuckDB lets one process at a time open a database file, so every connection
        takes the workspace lock: a second process waits instead of failing.
        """
        if read_only and not self.duckdb_path.exists():
            raise OreError(f"workspace {self.root} holds no data yet: ingest a package first")
        with self.lock("read" if read_only else "write"):
            con = duckdb.connect(str(self.duckdb_path), read_only=read_only)
            try:
                yield con
            finally:
                con.close()

    # --- card-token keys -------------------------------------------------------------

    def card_key(self) -> tuple[int, bytes]:
        """The key every stored card token is made under, and its version; version 1 is made on first use.

        Keys live in ``keys/card-vN.key`` (mode 0600). Every ``card_token`` ore holds is made
        under one version, so that tokens compare by equality everywhere (holdings, cases,
        resolve): the oldest key until ``ore keys rekey`` moves the data to the newest
        (``keys/card-state.json`` records the move). A newer key made by ``ore keys rotate``
        tokenises new data too (``next_card_key``), until the re-key.
        """
        keys = dict(self._key_files())
        if not keys:
            self._write_key(1)
            keys = dict(self._key_files())
        version = self.tokenising_version()
        if version not in keys:
            raise OreError(
                f"keys/card-state.json says card tokens are made under key version {version}, but "
                f"keys/card-v{version}.key is missing: restore it from the operator's backup"
            )
        return version, self._read_key(keys[version])

    def next_card_key(self) -> tuple[int, bytes] | None:
        """The newest key while a rotation is in progress (new data is tokenised under it as well), else None."""
        keys = dict(self._key_files())
        if not keys:
            return None
        newest = max(keys)
        if newest <= self.tokenising_version():
            return None
        return newest, self._read_key(keys[newest])

    def tokenising_version(self) -> int:
        """The key version of every stored card token: as recorded by the last re-key, else the oldest key."""
        state = self.root / "keys" / STATE_FILE
        if state.exists():
            try:
                return int(json.loads(state.read_text(encoding="utf-8"))["version"])
            except (ValueError, KeyError, TypeError):
                raise OreError(f"{state} is damaged: restore it from the backup (it names the key version "
                               "of the stored card tokens)") from None
        versions = [v for v, _ in self._key_files()]
        return min(versions) if versions else 1

    def set_tokenising_version(self, version: int) -> None:
        """Record that every stored card token is now made under ``version`` (after a re-key); under the lock."""
        _write_private(self.root / "keys" / STATE_FILE, json.dumps({"version": version}).encode("utf-8"))

    def add_card_key(self) -> int:
        """Make the next key version (a rotation); returns it. Call under the workspace lock."""
        versions = [v for v, _ in self._key_files()]
        version = max(versions, default=0) + 1
        self._write_key(version)
        return version

    def has_card_key(self) -> bool:
        return bool(self._key_files())

    def discard_card_key(self, version: int) -> None:
        """Remove a key that a failed command made and nothing kept uses; call only under the lock."""
        (self.root / "keys" / f"card-v{version}.key").unlink(missing_ok=True)

    def card_keys(self) -> dict[int, bytes]:
        """Every key version present, for matching data tokenised under older keys."""
        return {v: self._read_key(p) for v, p in self._key_files()}

    def card_key_files(self) -> dict[int, Path]:
        """Every key version present and its file."""
        return dict(sorted(self._key_files()))

    @staticmethod
    def _read_key(path: Path) -> bytes:
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            # never tokenise under a short or empty key: its tokens would match nothing made under the real one
            raise OreError(
                f"card key {path} is damaged ({len(key)} bytes, expected {KEY_BYTES}); restore it from "
                "the operator's backup rather than deleting it: tokens made under another key do not match."
            )
        return key

    def _key_files(self) -> list[tuple[int, Path]]:
        found = []
        for p in (self.root / "keys").glob("card-v*.key"):
            try:
                found.append((int(p.stem.removeprefix("card-v")), p))
            except ValueError:
                continue
        return found

    def _write_key(self, version: int) -> None:
        """Write a new key whole under a temporary name, then link it into place.

        The key appears under its real name only complete, so a run killed while
        writing it leaves no empty key behind to tokenise with.
        """
        _write_private(self.root / "keys" / f"card-v{version}.key", secrets.token_bytes(KEY_BYTES), replace=False)


def _write_private(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` whole, mode 0600, under a temporary name first; ``replace=False`` keeps an existing file."""
    fd, tmp = tempfile.mkstemp(prefix=".new-", dir=path.parent)  # mkstemp creates it with mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; use theirs
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
