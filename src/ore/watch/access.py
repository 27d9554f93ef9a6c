"""Who may do what in the watch, and which subjects and alerts a user sees.

Each action has its own permission name; until the roles policy (``ore/auth/roles.yaml``)
lists them, a role holding the permission the action most resembles may act:

| action | permission | until then also |
|---|---|---|
| screen a feed | ``watch.screen`` | ``cases.import`` (analyst, supervisor: the national unit) |
| flag or unflag a merchant or product | ``watch.flag`` | ``cases.import`` |
| record the offender manager's force | ``watch.manage`` | ``cases.transition`` with every force (supervisor) |
| record CPORT items | ``watch.cport`` | ``alerts.read`` (offender manager) |
| list alerts and watched persons | ``alerts.read`` | ``cases.read`` with every force (the national unit) |

Scope: a role confined to its own force sees the subjects (and their alerts and CPORT
assessments) routed to that force; sealed ones only with ``sealed: visible``. On
PostgreSQL row-level security (migration 0100) makes the same decision again.
"""

from __future__ import annotations

from sqlalchemy import and_, false, true
from sqlalchemy.sql.expression import ColumnElement

from ore.auth.principal import AccessDenied, Principal, is_system
from ore.store.watch_models import WatchSubject

ACTIONS: dict[str, tuple[str, str, bool]] = {
    # action: (permission, permission accepted until the policy names the first, ... only with every force)
    "screen": ("watch.screen", "cases.import", False),
    "flag": ("watch.flag", "cases.import", False),
    "manage": ("watch.manage", "cases.transition", True),
    "cport": ("watch.cport", "alerts.read", False),
    "alerts": ("alerts.read", "cases.read", True),
}


def may(who: Principal, action: str) -> bool:
    permission, interim, national = ACTIONS[action]
    return is_system(who) or who.can(permission) or (who.can(interim) and (who.all_forces or not national))


def require(who: Principal, action: str, what: str) -> None:
    """Refuse, naming the permission, unless ``who`` may take ``action``."""
    if not may(who, action):
        permission = ACTIONS[action][0]
        roles = ", ".join(sorted(who.roles)) or "no role"
        raise AccessDenied(f"{who.username} ({roles}) may not {what}: it needs the permission {permission}")


def visible_subjects(who: Principal) -> ColumnElement[bool]:
    """The condition on ``watch_subjects`` that keeps to what ``who`` may see."""
    if not may(who, "alerts") and not may(who, "cport"):
        return false()
    conds: list[ColumnElement[bool]] = []
    if not who.all_forces:
        conds.append(WatchSubject.force_code == who.force if who.force else false())
    if not who.sees_sealed:
        conds.append(WatchSubject.sealed.is_(False))
    return and_(true(), *conds)
