"""Signed packages: the workspace's Ed25519 signing key, and checking a package a force received.

A dissemination package is a zip of CSV files and ``manifest.json`` (each file's name,
sha256 and row count); ``manifest.sig`` holds an Ed25519 signature over the manifest's
exact bytes. The receiving force pins the sender's public key (``ore package public-key``
prints it, and a ``.pub`` file is written beside every package) and runs
``ore package verify``: the signature proves the manifest is the sender's, the hashes
and row counts prove every file is the one the manifest lists.

The private key lives in the workspace (``keys/signing-ed25519.pem``, mode 0600),
generated on first use; like the card-token key it never leaves the workspace.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ore.errors import OreError
from ore.workspace import Workspace

KEY_FILE = "signing-ed25519.pem"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "ore-dissemination/1"


def _key_path(ws: Workspace) -> Path:
    return ws.root / "keys" / KEY_FILE


def signing_key(ws: Workspace) -> Ed25519PrivateKey:
    """The workspace's signing key, generated (mode 0600, written whole) on first use."""
    path = _key_path(ws)
    with ws.lock("signing key"):
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            fd, tmp = tempfile.mkstemp(prefix=".new-", dir=path.parent)  # created with mode 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
                    f.flush()
                    os.fsync(f.fileno())
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as e:
        raise OreError(f"signing key {path} is damaged ({e}); restore it from the operator's backup") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise OreError(f"signing key {path} is not an Ed25519 key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, in hex: what a force reads over the phone to pin a key."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise OreError(f"public key {path} not found") from None
    except ValueError as e:
        raise OreError(f"{path} is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise OreError(f"{path} is not an Ed25519 public key")
    return key


def csv_rows(data: bytes) -> int:
    """Data rows of a CSV file (the header not counted); quoted newlines stay inside their row."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    return max(sum(1 for _ in reader) - 1, 0)


def file_entry(name: str, data: bytes, rows: int) -> dict[str, Any]:
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "rows": rows, "bytes": len(data)}


def write_signed_zip(path: Path, files: dict[str, bytes], manifest: dict[str, Any], key: Ed25519PrivateKey) -> None:
    """Write ``files`` and the manifest, and its signature, to ``path`` (whole, then renamed into place)."""
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    signature = {"algorithm": "Ed25519", "key_fingerprint": fingerprint(key),
                 "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii")}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=".zip", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for name, data in files.items():
                    z.writestr(name, data)
                z.writestr(MANIFEST, manifest_bytes)
                z.writestr(SIGNATURE, json.dumps(signature, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Verification:
    """What ``verify_package`` found: ``ok`` only when nothing failed."""

    path: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_package(path: Path, public_key: Ed25519PublicKey) -> Verification:
    """Check a package's signature with the pinned key, then every listed file's hash and row count."""
    v = Verification(Path(path))
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        v.problems.append(f"not a readable zip: {e}")
        return v
    with z:
        names = set(z.namelist())
        doubled = sorted({n for n in z.namelist() if z.namelist().count(n) > 1})
        if doubled:  # a second member of the same name would shadow the signed one
            v.problems.append(f"members named twice in the zip: {', '.join(doubled)}")

        def read(name: str) -> bytes | None:
            try:
                return z.read(name)
            except KeyError:
                v.problems.append(f"{name}: missing from the zip")
            except (zipfile.BadZipFile, zlib.error, OSError) as e:
                v.problems.append(f"{name}: damaged in the zip ({e}): its bytes are not the ones signed")
            return None

        manifest_bytes, sig_bytes = read(MANIFEST), read(SIGNATURE)
        if manifest_bytes is None or sig_bytes is None:
            return v
        try:
            sig = json.loads(sig_bytes)
            signature = base64.b64decode(sig["signature"], validate=True)
        except (ValueError, KeyError, TypeError) as e:
            v.problems.append(f"{SIGNATURE}: unreadable ({e})")
            return v
        try:
            public_key.verify(signature, manifest_bytes)
            v.checked.append(f"signature: valid, key {fingerprint(public_key)}")
        except InvalidSignature:
            theirs = sig.get("key_fingerprint")
            if theirs and theirs != fingerprint(public_key):
                v.problems.append(
                    f"signature: made with another key ({theirs}) than the one given ({fingerprint(public_key)}): "
                    "the package is not from the sender whose key you pinned, or you gave the wrong key")
            else:
                v.problems.append(f"signature: does not match {MANIFEST}: the manifest was changed after signing")
        try:
            manifest = json.loads(manifest_bytes)
            listed = manifest["files"]
        except (ValueError, KeyError, TypeError) as e:
            v.problems.append(f"{MANIFEST}: unreadable ({e})")
            return v
        v.manifest = manifest
        if manifest.get("format") != FORMAT:
            v.problems.append(f"{MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}")
        for entry in listed:
            name = entry.get("name", "?")
            data = read(name)
            if data is None:
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry.get("sha256"):
                v.problems.append(f"{name}: sha256 {digest} is not the manifest's {entry.get('sha256')}: "
                                  "the file was changed")
                continue
            try:
                rows = csv_rows(data) if name.endswith(".csv") else entry.get("rows")
            except UnicodeDecodeError:
                rows = None
            if rows != entry.get("rows"):
                v.problems.append(f"{name}: {rows} rows, the manifest says {entry.get('rows')}")
                continue
            v.checked.append(f"{name}: sha256 and {rows} rows match")
        unlisted = sorted(names - {e.get("name") for e in listed} - {MANIFEST, SIGNATURE})
        for name in unlisted:
            v.problems.append(f"{name}: in the zip but not in the manifest (added after signing)")
    return v
