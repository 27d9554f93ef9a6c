"""Signing in: passwords with lock-out, sessions that expire, and scoped API tokens for scripts.

- Five failed sign-ins within 15 minutes lock the account until an admin unlocks it
  (a locked account says so; a wrong password never says whether the user exists).
- A session expires after 30 minutes without use and 12 hours after sign-in, whichever
  comes first; it can be revoked (``ore logout``).
- An API token acts as its user but only with the permissions it was given (its scopes,
  a subset of the user's), until it expires or is revoked.
Only SHA-256 hashes of session and token secrets are stored: the secrets are 32 random
bytes, so a hash cannot be reversed, and a copy of the database signs no one in.

Failures are committed even though the sign-in then raises: a lock-out that a rollback
undid would not lock anything. Times can be given (``now``) so tests need no clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ore.audit.chain import record
from ore.auth.passwords import check_password, hash_password, needs_rehash, verify_password
from ore.auth.principal import Principal, principal_for
from ore.errors import OreError
from ore.store import Store
from ore.store.access import ApiToken, LoginFailure, LoginSession, User

LOCK_AFTER = 5
LOCK_WINDOW = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(minutes=30)
# how stale the last-seen time may be: a session idles out between IDLE_TIMEOUT and that plus this
SEEN_STEP = timedelta(minutes=1)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOKEN_PREFIX = "ore_"


class SignInFailed(OreError):
    """Wrong name or password, a locked or disabled account, an expired session or token."""


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignIn:
    principal: Principal
    must_change_password: bool


def _principal(user: User, via: str, scopes: frozenset[str] | None = None) -> Principal:
    return principal_for(user.username, user.roles.split(), user.force_code, user_id=user.id, via=via, scopes=scopes)


def _usable(user: User | None) -> User:
    if user is None:
        raise SignInFailed("your session's user no longer exists: sign in again (ore login)")
    if user.disabled:
        raise SignInFailed(f"user {user.username} is disabled: ask an admin")
    if user.locked_at is not None:
        raise SignInFailed(f"user {user.username} is locked after {LOCK_AFTER} failed sign-ins: ask an admin to "
                           f"unlock it (ore users unlock {user.username})")
    return user


def sign_in(store: Store, username: str, password: str, *, now: datetime | None = None) -> SignIn:
    """Check a user's password; count a failure (locking at the fifth in 15 minutes) and refuse, or sign in."""
    now = now or datetime.now(UTC)
    failed: str | None = None
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            failed = f"sign-in failed for {username!r}: wrong user name or password"
            record(s, user=username or "?", action="auth.sign_in", category="access", purpose="administration",
                   outcome="failed: unknown user", at=now)
        elif not verify_password(user.password_hash, password):
            # failures at once count one after another (the user's row locked on PostgreSQL; SQLite's
            # sessions are serial already), so the fifth is seen as the fifth and locks the account
            s.refresh(user, with_for_update=True)  # and read again: another attempt may have locked it
            s.add(LoginFailure(user_id=user.id, at=now))
            s.flush()
            recent = s.scalar(select(func.count(LoginFailure.id)).where(
                LoginFailure.user_id == user.id, LoginFailure.at > now - LOCK_WINDOW)) or 0
            outcome = "failed: wrong password"
            failed = f"sign-in failed for {username!r}: wrong user name or password"
            if recent >= LOCK_AFTER and user.locked_at is None:
                user.locked_at = now
                outcome += f"; locked after {recent} failures in {LOCK_WINDOW.seconds // 60} minutes"
                failed += f"; the account is now locked after {LOCK_AFTER} failures: ask an admin to unlock it"
            record(s, user=username, action="auth.sign_in", category="access", purpose="administration",
                   outcome=outcome, objects=[username], at=now)
        else:
            try:
                _usable(user)
            except SignInFailed as e:
                failed = str(e)
                record(s, user=username, action="auth.sign_in", category="access", purpose="administration",
                       outcome=f"refused: {e}", objects=[username], at=now)
    if failed:
        raise SignInFailed(failed)  # after the commit: the failure and any lock stay recorded
    with store.session() as s:
        user = s.get(User, user.id)
        assert user is not None
        s.execute(delete(LoginFailure).where(LoginFailure.user_id == user.id))
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        record(s, user=username, action="auth.sign_in", category="access", purpose="administration",
               objects=[username], at=now)
        return SignIn(_principal(user, "password"), user.must_change_password)


def change_password(store: Store, username: str, old: str, new: str, *, now: datetime | None = None) -> None:
    """The user changes their own password (the old one proves it is them)."""
    sign_in(store, username, old, now=now)
    if new == old:
        raise OreError("the new password must differ from the old one")
    check_password(new, username)
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        user.password_hash, user.must_change_password = hash_password(new), False
        user.password_changed_at = now or datetime.now(UTC)
        record(s, user=username, action="auth.change_password", category="access", purpose="administration",
               objects=[username])


# --- sessions -----------------------------------------------------------------------------------


def open_session(store: Store, principal: Principal, *, now: datetime | None = None) -> str:
    """A new session for a signed-in user; returns the secret (only its hash is stored)."""
    now = now or datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    with store.session() as s:
        s.add(LoginSession(user_id=principal.user_id, token_hash=secret_hash(secret), created_at=now,
                           last_seen_at=now))
    return secret


def resume_session(store: Store, secret: str, *, now: datetime | None = None) -> SignIn:
    """The user of a live session, marking it used; refuses one idle 30 minutes or older than 12 hours."""
    now = now or datetime.now(UTC)
    with store.session() as s:
        ls = s.scalar(select(LoginSession).where(LoginSession.token_hash == secret_hash(secret)))
        if ls is None or ls.revoked_at is not None:
            raise SignInFailed("you are signed out: sign in (ore login)")
        if now - ls.last_seen_at > IDLE_TIMEOUT:
            raise SignInFailed(f"your session expired after {IDLE_TIMEOUT.seconds // 60} minutes without use: "
                               "sign in again (ore login)")
        if now - ls.created_at > ABSOLUTE_TIMEOUT:
            raise SignInFailed(f"your session expired {ABSOLUTE_TIMEOUT.seconds // 3600} hours after sign-in: "
                               "sign in again (ore login)")
        user = _usable(s.get(User, ls.user_id))
        if now - ls.last_seen_at >= SEEN_STEP:  # one write a minute, not one a page: the store's writes queue
            ls.last_seen_at = now
        return SignIn(_principal(user, "session"), user.must_change_password)


def end_session(store: Store, secret: str, *, now: datetime | None = None) -> bool:
    with store.session() as s:
        ls = s.scalar(select(LoginSession).where(LoginSession.token_hash == secret_hash(secret)))
        if ls is None or ls.revoked_at is not None:
            return False
        ls.revoked_at = now or datetime.now(UTC)
        user = s.get(User, ls.user_id)
        record(s, user=user.username if user else "?", action="auth.sign_out", category="access",
               purpose="administration")
        return True


# --- API tokens ---------------------------------------------------------------------------------


def create_token(session: Session, by: Principal, name: str, scopes: list[str], *, days: int | None = 90,
                 now: datetime | None = None) -> tuple[ApiToken, str]:
    """A token for ``by`` limited to ``scopes`` (each must be a permission the user holds)."""
    now = now or datetime.now(UTC)
    if by.user_id is None:
        raise OreError("only a signed-in user can make an API token")
    wanted = frozenset(scopes)
    if not wanted:
        raise OreError("give the token at least one scope (a permission, e.g. cases.read)")
    if extra := sorted(wanted - by.permissions):
        raise OreError(f"{by.username} does not hold {', '.join(extra)}: a token can only narrow its user's rights")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=by.user_id, name=name, token_hash=secret_hash(secret), scopes=" ".join(sorted(wanted)),
                     created_at=now, expires_at=now + timedelta(days=days) if days else None)
    session.add(token)
    session.flush()
    record(session, user=by.username, action="tokens.create", category="access", objects=[f"token:{token.id}"],
           purpose="administration", detail={"name": name, "scopes": sorted(wanted),
                                             "expires_at": token.expires_at})
    return token, secret


def revoke_token(session: Session, by: Principal, token_id: int, *, now: datetime | None = None) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != by.user_id and not by.can("users.manage")):
        raise OreError(f"no token {token_id} of yours")
    token.revoked_at = now or datetime.now(UTC)
    record(session, user=by.username, action="tokens.revoke", category="access", objects=[f"token:{token_id}"],
           purpose="administration")
    return token


def list_tokens(session: Session, by: Principal) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == by.user_id).order_by(ApiToken.id)))


def token_principal(store: Store, secret: str, *, now: datetime | None = None) -> Principal:
    """The principal an API token acts as: its user, narrowed to its scopes."""
    now = now or datetime.now(UTC)
    with store.session() as s:
        token = s.scalar(select(ApiToken).where(ApiToken.token_hash == secret_hash(secret)))
        if token is None or token.revoked_at is not None:
            raise SignInFailed("the API token is unknown or revoked")
        if token.expires_at is not None and now >= token.expires_at:
            raise SignInFailed(f"the API token {token.name!r} expired at {token.expires_at:%Y-%m-%d %H:%M} UTC")
        user = _usable(s.get(User, token.user_id))
        token.last_used_at = now
        return _principal(user, "token", frozenset(token.scopes.split()))
