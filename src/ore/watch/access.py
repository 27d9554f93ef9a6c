"""Who may do what in the watch. The permissions are in the roles policy (``ore/auth/roles.yaml``):

| action | permission |
|---|---|
| screen a feed | ``watch.screen`` |
| flag or unflag a merchant or product | ``watch.flag`` |
| record the offender manager's force | ``watch.manage`` |
| record CPORT items | ``watch.cport`` |
| list alerts and watched persons | ``alerts.read`` |

Which subjects and alerts a user sees is decided with the cases' scope, in
``ore.auth.scope.visible_subjects``; on PostgreSQL row-level security (migration 0100) makes the
same decision again.
"""

from __future__ import annotations

from sqlalchemy import true
from sqlalchemy.sql.expression import ColumnElement

from ore.auth import scope
from ore.auth.principal import AccessDenied, Principal, is_system

ACTIONS: dict[str, str] = {
    "screen": "watch.screen",
    "flag": "watch.flag",
    "manage": "watch.manage",
    "cport": "watch.cport",
    "alerts": "alerts.read",
}


def may(who: Principal, action: str) -> bool:
    return is_system(who) or who.can(ACTIONS[action])


def require(who: Principal, action: str, what: str) -> None:
    """Refuse, naming the permission, unless ``who`` may take ``action``."""
    if not may(who, action):
        roles = ", ".join(sorted(who.roles)) or "no role"
        raise AccessDenied(f"{who.username} ({roles}) may not {what}: it needs the permission {ACTIONS[action]}")


def visible_subjects(who: Principal) -> ColumnElement[bool]:
    """What ``who`` may see of the watch (``ore.auth.scope``: the one place); the system sees all."""
    return true() if is_system(who) else scope.visible_subjects(who)
