"""Users: adding, disabling, giving roles, listing; the first administrator on first run.

Every change is an audit entry (category ``access``) in the same transaction. Only a
user holding ``users.manage`` (the admin role) may change users; the first admin is
made by ore itself when the store has no user, with a one-time password that must be
changed at the first sign-in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ore.audit.chain import record
from ore.auth.passwords import check_password, hash_password
from ore.auth.policy import load_policy
from ore.auth.principal import Principal
from ore.errors import OreError
from ore.store.access import User

FIRST_ADMIN = "admin"


def _roles(roles: list[str] | str, force: str | None) -> list[str]:
    names = roles.replace(",", " ").split() if isinstance(roles, str) else [r.strip() for r in roles if r.strip()]
    policy = load_policy()
    if unknown := [r for r in names if r not in policy.roles]:
        raise OreError(f"unknown role(s) {', '.join(unknown)}; the roles are: {', '.join(policy.roles)}")
    if not names:
        raise OreError(f"give at least one role: {', '.join(policy.roles)}")
    if not force and any(not policy.roles[r].all_forces for r in names):
        raise OreError(f"role(s) {', '.join(r for r in names if not policy.roles[r].all_forces)} work within one "
                       "force: give the user's --force")
    return sorted(set(names))


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise OreError(f"no user {username!r}")
    return user


def add_user(session: Session, by: Principal, username: str, password: str, roles: list[str] | str,
             force: str | None = None, *, must_change: bool = True) -> User:
    """Add a user (refusing a weak password or an unknown role); by default they change it at first sign-in."""
    by.require("users.manage", "add users")
    username = username.strip()
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise OreError(f"user name {username!r}: use letters, digits, '.', '-' and '_'")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise OreError(f"user {username!r} exists already")
    names = _roles(roles, force)
    check_password(password, username)
    user = User(username=username, password_hash=hash_password(password), roles=" ".join(names),
                force_code=force.strip().upper() if force else None, must_change_password=must_change,
                created_by=by.username, created_at=datetime.now(UTC), password_changed_at=datetime.now(UTC))
    session.add(user)
    session.flush()
    record(session, user=by.username, action="users.add", category="access", objects=[username],
           purpose="administration", detail={"roles": names, "force": user.force_code})
    return user


def set_roles(session: Session, by: Principal, username: str, roles: list[str] | str,
              force: str | None = None) -> User:
    by.require("users.manage", "change users' roles")
    user = get_user(session, username)
    force = force.strip().upper() if force else user.force_code
    names = _roles(roles, force)
    if user.username == by.username and "admin" in user.roles.split() and "admin" not in names:
        raise OreError("you cannot take the admin role from yourself: ask another admin")
    before = user.roles
    user.roles, user.force_code = " ".join(names), force
    record(session, user=by.username, action="users.roles", category="access", objects=[username],
           purpose="administration", detail={"before": before.split(), "after": names, "force": force})
    return user


def set_disabled(session: Session, by: Principal, username: str, disabled: bool = True) -> User:
    """Disable (or enable) a user; a disabled user's sessions and tokens stop working at once."""
    by.require("users.manage", "disable users")
    user = get_user(session, username)
    if disabled and user.username == by.username:
        raise OreError("you cannot disable yourself: ask another admin")
    user.disabled = disabled
    record(session, user=by.username, action="users.disable" if disabled else "users.enable", category="access",
           objects=[username], purpose="administration")
    return user


def unlock(session: Session, by: Principal, username: str) -> User:
    by.require("users.manage", "unlock users")
    user = get_user(session, username)
    user.locked_at = None
    record(session, user=by.username, action="users.unlock", category="access", objects=[username],
           purpose="administration")
    return user


def reset_password(session: Session, by: Principal, username: str, password: str) -> User:
    """An admin sets a temporary password; the user must change it at the next sign-in."""
    by.require("users.manage", "reset passwords")
    user = get_user(session, username)
    check_password(password, username)
    user.password_hash, user.must_change_password = hash_password(password), True
    user.password_changed_at = datetime.now(UTC)
    record(session, user=by.username, action="users.reset_password", category="access", objects=[username],
           purpose="administration")
    return user


def list_users(session: Session, by: Principal) -> list[User]:
    by.require("users.manage", "list users")
    return list(session.scalars(select(User).order_by(User.username)))


@dataclass(frozen=True)
class FirstAdmin:
    username: str
    password: str  # shown once, never stored


def ensure_first_admin(session: Session) -> FirstAdmin | None:
    """On first run (no user at all) make the admin with a one-time password; otherwise nothing."""
    if session.scalar(select(func.count(User.id))):
        return None
    password = secrets.token_urlsafe(15)
    now = datetime.now(UTC)
    session.add(User(username=FIRST_ADMIN, password_hash=hash_password(password), roles="admin",
                     must_change_password=True, created_by="ore (first run)", created_at=now,
                     password_changed_at=now))
    session.flush()
    record(session, user="ore", action="users.first_admin", category="access", objects=[FIRST_ADMIN],
           purpose="administration")
    return FirstAdmin(FIRST_ADMIN, password)
