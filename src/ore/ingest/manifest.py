"""The package manifest: identity and integrity, checked before anything is written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ore.errors import PackageRejected

FORMAT = "ore-lead-package"
VERSION = 1
KNOWN_FILES = ("leads.csv", "visits.csv")
MAX_MANIFEST_BYTES = 1_000_000  # a manifest is a few hundred bytes; it is read whole, so bound it


@dataclass(frozen=True)
class Manifest:
    package_id: str
    raw: dict[str, Any]
    files: dict[str, dict[str, Any]]

    @property
    def received(self) -> date | None:
        value = self.raw.get("received")
        try:
            return date.fromisoformat(value) if value else None
        except (TypeError, ValueError):
            return None

    @property
    def fingerprint(self) -> str:
        """One hash over every file's hash: equal fingerprints mean the same package content."""
        parts = sorted(f"{name}:{meta['sha256']}" for name, meta in self.files.items())
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(root: Path) -> Manifest:
    """Parse and check ``manifest.json`` against the files beside it; reject on any disagreement."""
    path = root / "manifest.json"
    if not path.is_file():
        raise PackageRejected(f"{root}: no manifest.json")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise PackageRejected(f"manifest.json: {path.stat().st_size:,} bytes is not a manifest "
                              f"(limit {MAX_MANIFEST_BYTES:,})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackageRejected(f"manifest.json: not valid JSON ({e})") from None
    except RecursionError:  # [[[[... nested past Python's stack: not a manifest
        raise PackageRejected("manifest.json: nested too deeply to be a manifest") from None
    if not isinstance(raw, dict):
        raise PackageRejected("manifest.json: expected a JSON object")
    if raw.get("format") != FORMAT:
        raise PackageRejected(f"manifest.json: format is {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("version") != VERSION:
        raise PackageRejected(f"manifest.json: version {raw.get('version')!r} is not supported (ore reads {VERSION})")
    package_id = raw.get("package_id")
    if not isinstance(package_id, str) or not package_id.strip():
        raise PackageRejected("manifest.json: package_id is missing")
    files = raw.get("files")
    if not isinstance(files, dict) or "leads.csv" not in files:
        raise PackageRejected("manifest.json: files must list leads.csv with its sha256 and rows")
    # the whole manifest is checked before any file is read, so a bad entry is named whatever its place
    for name, meta in files.items():
        if name not in KNOWN_FILES:
            raise PackageRejected(f"manifest.json: unknown file {name!r} (a package holds {', '.join(KNOWN_FILES)})")
        rows = meta.get("rows") if isinstance(meta, dict) else None
        if (not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str)
                or not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            raise PackageRejected(f"manifest.json: {name} needs a sha256 string and a rows count")
    for name in KNOWN_FILES:
        if (root / name).exists() and name not in files:
            raise PackageRejected(f"{name}: present in the package but not listed in manifest.json")
    for name, meta in files.items():
        check_file(root / name, meta)
    return Manifest(package_id.strip(), raw, files)


def check_file(path: Path, meta: dict[str, Any]) -> None:
    if not path.is_file():
        raise PackageRejected(f"{path.name}: listed in manifest.json but not in the package")
    actual = sha256_file(path)
    if actual != meta["sha256"].lower():
        raise PackageRejected(
            f"{path.name}: sha256 is {actual}, manifest.json says {meta['sha256']}: the file is not the one sent"
        )
    # The row count is checked as the file is loaded, inside the load's transaction: counting here
    # would parse every file twice.


def manifest_for_export(path: Path, package_id: str) -> Manifest:
    """A manifest made on receipt for a bare export that came without one; the load fills in its rows."""
    meta: dict[str, Any] = {"sha256": sha256_file(path), "rows": None, "original_name": path.name}
    raw = {
        "format": FORMAT,
        "version": VERSION,
        "package_id": package_id,
        "source": f"bare export {path.name}",
        "files": {"leads.csv": meta},
    }
    return Manifest(package_id, raw, {"leads.csv": meta})
