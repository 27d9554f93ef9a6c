"""The actions a page or the API takes: each one the body of the matching ``ore`` command.

A command line command and its page must not drift apart, so each function here does
what the command in ``ore.cli`` does, with the same functions of ``ore.cases``,
``ore.auth`` and ``ore.audit``, in one store session of the signed-in user with the
command's default purpose code. The pages and the API are thin over these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ore.auth import approvals
from ore.auth.principal import Principal
from ore.cases import find_case, record_safeguarding, seal, transition
from ore.cases.disseminate import approve_step
from ore.errors import OreError
from ore.store import Store
from ore.workspace import Workspace


@contextmanager
def acting(store: Store, who: Principal, purpose: str, permission: str | None = None,
           what: str = "") -> Iterator[Session]:
    """A store session for ``who`` with the purpose recorded in every audit entry (as ``ore.cli._acting``)."""
    if permission:
        who.require(permission, what)
    with store.session(who) as s:
        s.info["purpose"] = purpose
        yield s


@dataclass
class StepResult:
    person: str
    before: str
    after: str
    s38_category: str
    due_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"person": self.person, "before": self.before, "after": self.after,
                "s38_category": self.s38_category,
                "due_at": self.due_at.isoformat(timespec="seconds") if self.due_at else None}


def take_step(store: Store, who: Principal, person: str, to: str, *, reason: str, package: str | None = None,
              band: str | None = None, ground: str | None = None, override_by: str | None = None,
              override_reason: str | None = None, at: datetime | None = None,
              force: str | None = None, approval: int | None = None) -> StepResult:
    """``ore cases transition``: one lifecycle step as the signed-in user; a refusing rule is named."""
    from ore.cases import STATES

    if to not in STATES:
        raise OreError(f"{to!r} is not a status; one of: {', '.join(STATES)}")
    with acting(store, who, "investigation") as s:
        case = find_case(s, person, package)
        before = case.status
        approve_step(s, case, to, force, approval)  # the two-person rule, as for a package
        transition(s, case, to, by=who.username, reason=reason, at=at, band=band, force=force,
                   override_by=override_by or None, override_reason=override_reason or None, ground=ground or None)
        return StepResult(person, before, case.status, case.s38_category, case.due_at)


def add_safeguarding(store: Store, who: Principal, person: str, *, identified: int, safeguarded: int, agency: str,
                     identified_on: date | None = None, safeguarded_on: date | None = None,
                     package: str | None = None) -> dict[str, Any]:
    """``ore cases safeguard``: children identified and safeguarded (counts, dates, agency; no names)."""
    with acting(store, who, "safeguarding") as s:
        row = record_safeguarding(s, find_case(s, person, package), identified=identified, safeguarded=safeguarded,
                                  agency=agency, by=who.username, identified_on=identified_on,
                                  safeguarded_on=safeguarded_on)
        return {"person": person, "children_identified": row.children_identified,
                "children_safeguarded": row.children_safeguarded, "agency": row.agency}


def seal_person(store: Store, who: Principal, person: str, *, reason: str, package: str | None = None) -> None:
    """``ore cases seal``."""
    with acting(store, who, "supervision") as s:
        seal(s, find_case(s, person, package), by=who.username, reason=reason)


def disseminate(store: Store, ws: Workspace, who: Principal, force: str, *, persons: list[str] | None = None,
                reason: str | None = None, approval: int | None = None, operation: str | None = None,
                package: str | None = None) -> dict[str, Any]:
    """``ore disseminate``: a signed package for the force into ``WORKSPACE/disseminations/FORCE``."""
    from ore.cases.disseminate import disseminate as run_disseminate

    out = ws.root / "disseminations" / force
    out.mkdir(parents=True, exist_ok=True)
    r = run_disseminate(store, ws, force, out=out, operation=operation, package=package, persons=persons or None,
                        reason=reason, principal=who, approval=approval, purpose="disclosure")
    return {"force": r.force, "operation": r.operation, "file": r.path.name, "persons": r.persons,
            "counts": r.counts, "key_fingerprint": r.key_fingerprint,
            "held": [{"person": p, "rule": rule} for p, rule, _ in r.held], "sealed_skipped": r.sealed_skipped}


def request_approval(store: Store, who: Principal, action: str, obj: str, reason: str) -> dict[str, Any]:
    """``ore approvals request``."""
    with acting(store, who, "supervision") as s:
        a = approvals.request(s, who, action, obj, reason)
        return approval_dict(a)


def grant_approval(store: Store, who: Principal, approval_id: int) -> dict[str, Any]:
    """``ore approvals grant``."""
    with acting(store, who, "supervision", "approvals.grant", "approve") as s:
        return approval_dict(approvals.grant(s, who, approval_id))


def open_approvals(store: Store, who: Principal) -> list[dict[str, Any]]:
    """``ore approvals list``: needs a role that may ask for or give one."""
    if not (who.can("approvals.grant") or who.can("cases.disseminate") or who.can("cases.unseal")):
        who.require("approvals.grant", "list approvals")
    with acting(store, who, "supervision") as s:
        return [approval_dict(a) for a in approvals.pending(s)]


def approval_dict(a: Any) -> dict[str, Any]:
    return {"id": a.id, "action": a.action, "object": a.object, "reason": a.reason, "requested_by": a.requested_by,
            "approved_by": a.approved_by, "used": a.used_at is not None}


def day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise OreError(f"{name} {value!r} is not a date such as 2004-04-01") from None


def upload_dir(ws: Workspace, job_id: str) -> Path:
    path = ws.root / "uploads" / job_id
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def watch_alerts(store: Any, who: Any, limit: int = 500) -> list[dict[str, Any]]:
    """The watch alerts ``who`` may see, ranked as ``ore watch alerts`` ranks them (a consultation)."""
    from ore.watch.alerts import list_alerts, refresh

    who.require("alerts.read", "see watch alerts")
    refresh(store)  # the sealed and eliminated off the watch before anyone reads it
    with acting(store, who, "investigation") as s:
        return [{"id": v.alert.id, "person": v.subject.person_ref, "force": v.subject.force_code or "",
                 "raised": v.alert.raised_at.isoformat(timespec="seconds"),
                 "matched": sorted({m.get("kind", "") for m in v.matched}), "rows": v.alert.row_count,
                 "flagged_rows": v.alert.flagged_rows, "cport": v.cport_shown, "status": v.alert.status}
                for v in list_alerts(s, limit=limit)]
