"""The two-person rule: a second authorised user approves, and the approval is recorded.

Which actions need it, and who may approve, is policy (``two_person`` in roles.yaml):
disseminating a package with a P1 person, a bulk export, disclosure to a force other
than the one the person is allocated to, and unsealing. The user who will act asks
(``request``); another user holding an approving role and ``approvals.grant`` approves
(``grant``); the action then names the approval, which is checked (same action, same
object, approved, by someone else, not used before) and used up in the action's own
transaction. Each step is an audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.audit.chain import record
from ore.auth.policy import load_policy
from ore.auth.principal import Principal, is_system
from ore.errors import OreError
from ore.store.access import Approval


class ApprovalNeeded(OreError):
    """The action needs a second person's approval that was not given (or does not fit)."""


def _action(action: str) -> frozenset[str]:
    approvers = load_policy().two_person.get(action)
    if approvers is None:
        raise OreError(f"{action!r} is not an action under the two-person rule; those are: "
                       f"{', '.join(load_policy().two_person)}")
    return approvers


def request(session: Session, who: Principal, action: str, obj: str, reason: str) -> Approval:
    """Ask for an approval; only a user who could take the action may ask (``two_person_request``)."""
    _action(action)
    who.require(load_policy().two_person_request[action], f"ask for approval of {action}")
    if not reason.strip():
        raise OreError("say why the action is needed (--reason): the approver reads it")
    a = Approval(action=action, object=obj, reason=reason.strip(), requested_by=who.username,
                 requested_at=datetime.now(UTC))
    session.add(a)
    session.flush()
    record(session, user=who.username, action="approvals.request", category="access",
           objects=[f"approval:{a.id}", obj], purpose="supervision", detail={"action": action, "reason": reason})
    return a


def grant(session: Session, who: Principal, approval_id: int) -> Approval:
    """Approve another user's request; refused to the requester and to roles the policy does not name."""
    a = session.get(Approval, approval_id)
    if a is None:
        raise OreError(f"no approval request {approval_id}")
    approvers = _action(a.action)
    who.require("approvals.grant", f"approve {a.action}")
    if not (who.roles & approvers):
        raise OreError(f"approval {approval_id} ({a.action}) needs a user with the role "
                       f"{' or '.join(sorted(approvers))}; {who.username} has {', '.join(sorted(who.roles))}")
    if a.requested_by == who.username:
        raise OreError(f"approval {approval_id}: the two-person rule needs a second person; "
                       f"{who.username} asked for it and cannot approve it")
    if a.approved_by:
        raise OreError(f"approval {approval_id} was already given by {a.approved_by}")
    a.approved_by, a.approved_at = who.username, datetime.now(UTC)
    record(session, user=who.username, action="approvals.grant", category="access",
           objects=[f"approval:{a.id}", a.object], purpose="supervision",
           detail={"action": a.action, "requested_by": a.requested_by})
    return a


def pending(session: Session) -> list[Approval]:
    return list(session.scalars(select(Approval).where(Approval.used_at.is_(None)).order_by(Approval.id)))


def use(session: Session, who: Principal, action: str, obj: str, approval_id: int | None) -> Approval | None:
    """Check and use up the approval that lets ``who`` take ``action`` on ``obj``; refuse without one.

    Internal (system) callers are not people and need no second one.
    """
    if is_system(who):
        return None
    _action(action)
    if approval_id is None:
        raise ApprovalNeeded(
            f"{action} of {obj} needs a second person's approval (two-person rule): ask with "
            f"`ore approvals request {action} {obj} --reason ...`, have another authorised user run "
            "`ore approvals grant ID`, then repeat with --approval ID")
    a = session.get(Approval, approval_id)
    problem = None
    if a is None:
        problem = "does not exist"
    elif (a.action, a.object) != (action, obj):
        problem = f"is for {a.action} of {a.object}, not {action} of {obj}"
    elif not a.approved_by:
        problem = "has not been approved yet"
    elif a.requested_by != who.username:
        problem = f"was asked for by {a.requested_by}, not {who.username}"
    elif a.approved_by == who.username:
        problem = "was approved by the same user who acts"
    elif a.used_at is not None:
        problem = f"was used already at {a.used_at:%Y-%m-%d %H:%M} UTC"
    if problem:
        raise ApprovalNeeded(f"approval {approval_id} {problem}")
    assert a is not None
    a.used_at = datetime.now(UTC)
    return a
