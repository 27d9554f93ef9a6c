"""Force scoping: which cases (and so persons, records, links) and which watch alerts a user may
see. The one place.

- A role with ``forces: all`` (the national unit, supervisors, auditors, admins) sees every
  force's cases; an own-force role (investigator, offender manager) sees only the cases
  disseminated to the user's force. A person allocated to a force but not yet disseminated
  is the national unit's: showing it to the force before the supervisor's decision would
  be a disclosure nobody made.
- A role without ``cases.read`` (the offender manager: watch alerts only) sees no case.
- A sealed person (eliminated, wrongly identified) is seen only by roles with
  ``sealed: visible`` (auditor, admin).

``ore.cases.queries.case_query`` applies ``visible_cases`` to every case query, and the
session carries the principal (``Store.session(principal)``). On PostgreSQL the same
decision is made again by row-level security from ``session_settings`` (migration 0002),
so a query that forgot the scope still returns nothing it should not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, text, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from ore.auth.principal import SYSTEM, Principal
from ore.store.models import Case


def principal_of(session: Session) -> Principal:
    """The principal a store session acts for (internal sessions act for ``SYSTEM``)."""
    return session.info.get("principal", SYSTEM)


def visible_cases(who: Principal, *, counting: bool = False) -> ColumnElement[bool]:
    """The condition on ``cases`` that keeps to what ``who`` may see.

    ``counting``: for counts only (the funnel), where sealed persons still count but no
    one is named, so only the force scope applies.
    """
    if not who.can("cases.read"):
        return false()  # e.g. an offender manager: watch alerts, not cases
    conds: list[ColumnElement[bool]] = []
    if not who.all_forces:
        conds.append(Case.force_code == who.force if who.force else false())
    if not who.sees_sealed and not counting:
        conds.append(Case.sealed.is_(False))
    return and_(true(), *conds)


def visible_subjects(who: Principal) -> ColumnElement[bool]:
    """The condition on ``watch_subjects`` (and so the watch's alerts and CPORT notes) that keeps
    to what ``who`` may see: the same force and sealing rules as cases, for the roles that read
    alerts (``alerts.read``) or record CPORT items (``watch.cport``); alerts are routed to the
    offender manager's force."""
    from ore.store.watch_models import WatchSubject

    if not who.can("alerts.read") and not who.can("watch.cport"):
        return false()
    conds: list[ColumnElement[bool]] = []
    if not who.all_forces:
        conds.append(WatchSubject.force_code == who.force if who.force else false())
    if not who.sees_sealed:
        conds.append(WatchSubject.sealed.is_(False))
    return and_(true(), *conds)


def session_settings(who: Principal) -> dict[str, Any]:
    """PostgreSQL settings that drive row-level security for ``who`` (transaction-local)."""
    return {"ore.force": who.force_setting, "ore.sealed": "on" if who.sees_sealed else "off",
            "ore.role": " ".join(sorted(who.roles)), "ore.user": who.username}


def sealing(session: Session) -> None:
    """Let this transaction see sealed rows on PostgreSQL, for the step that seals one.

    Row-level security checks an updated row against what the session may read, so a
    supervisor (who does not see sealed persons) could not seal, nor an investigator
    eliminate, without it. Only the lifecycle's sealing steps call this; the setting ends
    with the transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('ore.sealed', 'on', true)"))
