"""The case store's access and audit tables (issue 5): who may use ore, and what they did.

- ``users``: one row per person who signs in; roles (space-separated names from
  ``ore/auth/roles.yaml``), the force an own-force role is confined to, the argon2id
  hash of the password (never the password), disabled and locked flags.
- ``login_failures``: failed sign-ins, counted over a window to lock an account.
- ``login_sessions`` and ``api_tokens``: only a SHA-256 hash of each secret is kept, so a
  copy of the database cannot be used to sign in.
- ``audit_log``: the append-only, hash-chained record of every collection,
  alteration, consultation, disclosure, combination and erasure (Data Protection
  Act 2018 s.62); ``audit_head`` holds the chain's last position and hash, so a
  truncated tail is seen; a signed checkpoint exported elsewhere catches a restored
  older copy.
- ``approvals``: the second person's consent for the actions the two-person rule covers.
- ``disclosures``: to whom each person's data went, so recipients can be told when
  the person is eliminated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ore.store.models import Base, utcnow


class User(Base):
    """Someone who signs in to ore."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[str] = mapped_column(String(200), default="")  # space-separated role names
    force_code: Mapped[str | None] = mapped_column(String(20))  # the force of own-force roles
    disabled: Mapped[bool] = mapped_column(default=False)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    locked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    password_changed_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One failed sign-in of a known user."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime]


class LoginSession(Base):
    """A signed-in session: expires after idle time and after an absolute lifetime."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    """A revocable token for scripts, limited to the permissions in ``scopes``."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated permissions
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One entry of the audit chain; ``hash`` covers every column and the previous entry's hash."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_username_at", "username", "at"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)  # UTC, to the millisecond
    username: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))  # e.g. cases.show
    category: Mapped[str] = mapped_column(String(20))  # collection | alteration | consultation | ...
    objects: Mapped[str] = mapped_column(Text)  # JSON list of object ids (person refs, packages, users)
    purpose: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(Text)  # ok, or what refused or failed
    detail: Mapped[str] = mapped_column(Text)  # JSON object: recipients, counts, ...
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last position and hash (one row), updated in the same transaction as each append."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


class Approval(Base):
    """A second person's consent to one action on one object; used once."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(40))  # disseminate_p1 | bulk_export | cross_force_disclosure | unseal
    object: Mapped[str]  # the force, operation or person reference the action is for
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(String(80))
    approved_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]


class Disclosure(Base):
    """A person's data sent to a recipient (a force, an export's destination), by audit entry."""

    __tablename__ = "disclosures"
    id: Mapped[int] = mapped_column(primary_key=True)
    audit_seq: Mapped[int]
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"), index=True)
    person_ref: Mapped[str] = mapped_column(String(40))
    package_ref: Mapped[str]
    recipient: Mapped[str]
    kind: Mapped[str] = mapped_column(String(40))  # dissemination | export
    at: Mapped[datetime]
