"""Who is acting: a signed-in user's roles, force and permissions, as every check reads them."""

from __future__ import annotations

from dataclasses import dataclass

from ore.auth.policy import Policy, load_policy
from ore.errors import OreError


class AccessDenied(OreError):
    """The signed-in user's roles do not allow the action (the message names the permission)."""


@dataclass(frozen=True)
class Principal:
    """A user as the checks see them. ``force`` confines own-force roles; ``via`` says how they signed in."""

    username: str
    roles: frozenset[str]
    force: str | None
    permissions: frozenset[str]
    all_forces: bool
    sees_sealed: bool
    user_id: int | None = None
    via: str = "password"

    def can(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions

    def require(self, permission: str, what: str = "") -> None:
        """Refuse, naming the permission and the user's roles, unless the user holds ``permission``."""
        if not self.can(permission):
            roles = ", ".join(sorted(self.roles)) or "no role"
            doing = f" {what}" if what else " do this"
            raise AccessDenied(f"{self.username} ({roles}) may not{doing}: it needs the permission {permission}")

    @property
    def force_setting(self) -> str:
        """The value of PostgreSQL's ``ore.force`` for this user: ``*`` for every force, else the force code."""
        if self.all_forces:
            return "*"
        return self.force or ""  # an own-force user without a force sees nothing


def principal_for(username: str, roles: list[str] | frozenset[str], force: str | None, *, user_id: int | None = None,
                  via: str = "password", scopes: frozenset[str] | None = None,
                  policy: Policy | None = None) -> Principal:
    """Combine the user's roles (union of permissions; the widest force and sealed visibility)."""
    policy = policy or load_policy()
    known = [policy.roles[r] for r in roles if r in policy.roles]
    perms = frozenset().union(*(r.permissions for r in known)) if known else frozenset()
    if scopes is not None:
        perms &= scopes
    return Principal(username, frozenset(r.name for r in known), force, perms,
                     any(r.all_forces for r in known), any(r.sees_sealed for r in known), user_id, via)


# Internal callers (tests, migrations, the importer's bookkeeping) that act for no user: sees everything.
SYSTEM = Principal("system", frozenset({"system"}), None, frozenset({"*"}), True, True, None, "system")


def is_system(p: Principal) -> bool:
    return p.via == "system"
