"""Signed checkpoints of the audit chain's head, kept outside the database.

The chain proves entries were not changed in place, but a whole database restored from
an older backup is a consistent chain too, only shorter. A checkpoint (the last entry's
number and hash, signed with the workspace's Ed25519 key, the same key that signs
dissemination packages) is exported to somewhere the database's administrator cannot
rewrite (a write-once share, the auditor's own records). Verifying against it fails if
the log no longer reaches the checkpoint's entry, or holds a different entry there.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.audit.verify import verify_chain
from ore.errors import OreError
from ore.store.access import AuditEntry

FORMAT = "ore-audit-checkpoint/1"


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def make_checkpoint(session: Session, key: Ed25519PrivateKey, *, at: datetime | None = None) -> dict[str, Any]:
    """A signed record of the chain's head; refuses if the chain does not verify (a bad log is not endorsed)."""
    from ore.report.package_sign import fingerprint

    v = verify_chain(session)
    if not v.ok:
        raise OreError(f"the audit log does not verify, so no checkpoint was made: {v.problem}")
    return checkpoint_of(v.last_seq, v.last_hash, key, at=at)


def checkpoint_of(seq: int, digest: str, key: Ed25519PrivateKey, *, at: datetime | None = None) -> dict[str, Any]:
    """A signed checkpoint of a head already verified (a backup signs the head its copy is known to hold)."""
    from ore.report.package_sign import fingerprint

    body = {"format": FORMAT, "seq": seq, "hash": digest,
            "created_at": (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds"),
            "key_fingerprint": fingerprint(key)}
    return {"checkpoint": body, "signature": base64.b64encode(key.sign(_canonical(body))).decode("ascii")}


def write_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write whole or not at all: a checkpoint cut short by a crash would hide the rollback it is kept to catch."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(checkpoint, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # not secret: a head hash and a signature
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["checkpoint"]["seq"], data["checkpoint"]["hash"], data["signature"]  # noqa: B018 - shape check
    except FileNotFoundError:
        raise OreError(f"checkpoint {path} not found") from None
    except (ValueError, KeyError, TypeError):
        raise OreError(f"{path} is not an audit checkpoint") from None
    return data


@dataclass(frozen=True)
class CheckpointCheck:
    ok: bool
    message: str
    rollback: bool = False  # the log no longer reaches the checkpoint: an older copy restored, or entries cut


def check_checkpoint(session: Session, data: dict[str, Any], key: Ed25519PublicKey) -> CheckpointCheck:
    """Is the checkpoint signed by ``key``, and does the log still hold its entry, unchanged?"""
    body = data["checkpoint"]
    try:
        key.verify(base64.b64decode(data["signature"]), _canonical(body))
    except (InvalidSignature, ValueError):
        return CheckpointCheck(False, "the checkpoint's signature does not verify with this workspace's key: "
                                      "it was altered or made elsewhere")
    if body.get("format") != FORMAT:
        return CheckpointCheck(False, f"unknown checkpoint format {body.get('format')!r}")
    seq, expected = int(body["seq"]), str(body["hash"])
    if seq == 0:
        return CheckpointCheck(True, "the checkpoint was made of an empty log")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
    if entry is None:
        last = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1)) or 0
        return CheckpointCheck(False, f"ROLLBACK: the log ends at entry {last} but the checkpoint of "
                                      f"{body['created_at']} records entry {seq}: an older copy was restored, or "
                                      "entries were removed", rollback=True)
    if entry.hash != expected:
        return CheckpointCheck(False, f"ROLLBACK: entry {seq} differs from the checkpoint of {body['created_at']}: "
                                      "the log was replaced or rewritten since (an older copy restored and written "
                                      "to)", rollback=True)
    return CheckpointCheck(True, f"the log holds entry {seq} as checkpointed at {body['created_at']}")


def kept_checkpoint(settings: Any) -> Path | None:
    """The operator's checkpoint file (``ORE_AUDIT_CHECKPOINT``), if one is configured."""
    path = getattr(settings, "audit_checkpoint", None)
    return Path(path).expanduser() if path else None


def workspace_public_key(keys_dir: Path) -> Ed25519PublicKey | None:
    """The public half of the workspace's signing key, read without making one (None if there is none)."""
    from cryptography.hazmat.primitives import serialization

    pem = Path(keys_dir) / "signing-ed25519.pem"
    if not pem.exists():
        return None
    key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise OreError(f"{pem} is not an Ed25519 key")
    return key.public_key()


def check_kept_checkpoint(session: Session, path: Path, keys_dir: Path) -> CheckpointCheck:
    """``check_checkpoint`` against the operator's kept file: a missing file or signing key is said, not raised."""
    if not Path(path).exists():
        return CheckpointCheck(False, f"no checkpoint at {path} yet (ore backup writes one)")
    key = workspace_public_key(keys_dir)
    if key is None:
        return CheckpointCheck(False, f"the workspace has no signing key ({keys_dir}/signing-ed25519.pem) to check "
                                      f"the checkpoint {path} with: restore keys/ from the key backup")
    return check_checkpoint(session, read_checkpoint(path), key)
