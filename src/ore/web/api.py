"""The REST API under ``/api/v1``: every action the pages take, for scripts with a scoped token.

Authentication is ``Authorization: Bearer`` with a token of ``ore tokens create`` (its
user's rights narrowed to its scopes); cookies are never read here, so the API needs
no CSRF token. Answers: 401 no or bad token, 403 the permission is missing (named),
404 missing or another force's person (the same answer), 409 a lifecycle rule, the
two-person rule or a concurrent change refused, 400 any other refusal.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from pydantic import BaseModel, Field

from ore.auth.principal import Principal
from ore.cases import views
from ore.web import actions
from ore.web.deps import Server, api_user, server

router = APIRouter(prefix="/api/v1", tags=["ore"])
Who = Annotated[Principal, Depends(api_user)]
Srv = Annotated[Server, Depends(server)]
Ref = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=2000)]
BandName = Literal["P1", "P2", "P3", "P4", "none"]


class StepIn(BaseModel):
    """One lifecycle step (``ore cases transition``); ``band`` for triaged, ``ground`` for eliminated."""

    to: Literal["triaged", "accepted", "under_investigation", "arrested", "interviewed", "charged", "cautioned",
                "no_further_action", "released", "convicted", "acquitted", "eliminated"]
    reason: Text
    band: BandName | None = None
    ground: Literal["card_fraud_victim", "identity_misused", "witness"] | None = None
    override_by: Annotated[str, Field(max_length=200)] | None = None
    override_reason: Text | None = None
    package: Annotated[str, Field(max_length=200)] | None = None


class SafeguardIn(BaseModel):
    identified: Annotated[int, Field(ge=0, le=10_000)]
    safeguarded: Annotated[int, Field(ge=0, le=10_000)]
    agency: Annotated[str, Field(min_length=1, max_length=200)]
    identified_on: date | None = None
    safeguarded_on: date | None = None
    package: Annotated[str, Field(max_length=200)] | None = None


class ReasonIn(BaseModel):
    reason: Text
    package: Annotated[str, Field(max_length=200)] | None = None


class DisseminateIn(BaseModel):
    force: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")]
    persons: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=100_000)
    reason: Text | None = None
    approval: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    operation: Annotated[str, Field(max_length=200)] | None = None
    package: Annotated[str, Field(max_length=200)] | None = None


class ApprovalIn(BaseModel):
    action: Literal["disseminate_p1", "bulk_export", "cross_force_disclosure", "unseal"]
    object: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Text


class UserIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    roles: Annotated[list[Literal["analyst", "supervisor", "investigator", "offender_manager", "auditor", "admin"]],
                     Field(min_length=1, max_length=6)]
    force: Annotated[str, Field(max_length=20)] | None = None


@router.get("/me", summary="Who the token acts as")
def me(who: Who) -> dict[str, Any]:
    return {"user": who.username, "roles": sorted(who.roles), "force": who.force,
            "permissions": sorted(who.permissions), "all_forces": who.all_forces}


@router.get("/persons", summary="The queue: persons filtered, searched, sorted and paged (ore cases list)")
def persons(who: Who, srv: Srv, band: BandName | None = None, force: Annotated[str | None, Query(max_length=20)] = None,
            grade: Literal["A", "B", "C"] | None = None, status: Annotated[str | None, Query(max_length=30)] = None,
            package: Annotated[str | None, Query(max_length=200)] = None,
            q: Annotated[str | None, Query(max_length=200)] = None,
            sort: Literal["band", "person", "name", "grade", "force", "status", "due", "records"] = "band",
            desc: bool = False, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
            per_page: Annotated[int, Query(ge=1, le=views.MAX_PER_PAGE)] = 50) -> dict[str, Any]:
    f = views.QueueFilters(band, force, grade, status, package, q, sort, desc, page, per_page)
    with actions.acting(srv.store, who, "investigation", "cases.read", "list cases") as s:
        result = views.queue(s, f, srv.ws)
    return {"total": result.total, "page": page, "pages": result.pages, "note": result.note,
            "persons": [{**r.as_dict(), "due_at": r.due_at.isoformat() if r.due_at else None} for r in result.rows]}


@router.get("/persons/{ref}", summary="A person's case: identity, records, reasons, holdings, timeline, actions")
def person(ref: Ref, who: Who, srv: Srv, package: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    with actions.acting(srv.store, who, "investigation", "cases.read", "show cases") as s:
        return views.person_page(s, ref, package).as_dict()


@router.get("/persons/{ref}/graph", summary="The link chart: cards, emails, IPs, accounts, persons sharing a card")
def person_graph(ref: Ref, who: Who, srv: Srv,
                 package: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    with actions.acting(srv.store, who, "investigation", "cases.read", "show cases") as s:
        return views.link_chart(s, srv.ws, ref, package).as_dict()


@router.post("/persons/{ref}/steps", summary="Take a lifecycle step: confirm band, arrest, charge, outcome, eliminate")
def person_step(ref: Ref, body: StepIn, who: Who, srv: Srv) -> dict[str, Any]:
    return actions.take_step(srv.store, who, ref, body.to, reason=body.reason, package=body.package, band=body.band,
                             ground=body.ground, override_by=body.override_by,
                             override_reason=body.override_reason).as_dict()


@router.post("/persons/{ref}/safeguarding", summary="Record children identified and safeguarded (counts only)")
def person_safeguarding(ref: Ref, body: SafeguardIn, who: Who, srv: Srv) -> dict[str, Any]:
    return actions.add_safeguarding(srv.store, who, ref, identified=body.identified, safeguarded=body.safeguarded,
                                    agency=body.agency, identified_on=body.identified_on,
                                    safeguarded_on=body.safeguarded_on, package=body.package)


@router.post("/persons/{ref}/seal", summary="Seal a person (ore cases seal)")
def person_seal(ref: Ref, body: ReasonIn, who: Who, srv: Srv) -> dict[str, Any]:
    actions.seal_person(srv.store, who, ref, reason=body.reason, package=body.package)
    return {"person": ref, "sealed": True}


@router.post("/disseminations", summary="Disseminate confirmed persons to a force as a signed package")
def disseminate(body: DisseminateIn, who: Who, srv: Srv) -> dict[str, Any]:
    return actions.disseminate(srv.store, srv.ws, who, body.force.upper(), persons=body.persons, reason=body.reason,
                               approval=body.approval, operation=body.operation, package=body.package)


@router.get("/approvals", summary="Open approvals (two-person rule)")
def approvals_list(who: Who, srv: Srv) -> list[dict[str, Any]]:
    return actions.open_approvals(srv.store, who)


@router.post("/approvals", summary="Ask a second person to approve an action")
def approvals_request(body: ApprovalIn, who: Who, srv: Srv) -> dict[str, Any]:
    return actions.request_approval(srv.store, who, body.action, body.object, body.reason)


@router.post("/approvals/{approval_id}/grant", summary="Approve another user's request")
def approvals_grant(approval_id: Annotated[int, Field(ge=1, le=2**31 - 1)], who: Who, srv: Srv) -> dict[str, Any]:
    return actions.grant_approval(srv.store, who, approval_id)


@router.get("/dashboard", summary="Funnel, counts by band and force, overdue P1/P2, fraud picture")
def dashboard(who: Who, srv: Srv) -> dict[str, Any]:
    with actions.acting(srv.store, who, "reporting", "report.read", "see the dashboard") as s:
        d = views.dashboard(s)
    return {"funnel": d.funnel.total.counts, "by_band": {r.group: r.counts for r in d.by_band.rows},
            "by_force": {r.group: r.counts for r in d.by_force.rows},
            "overdue": [{"person": o.person_ref, "band": o.band, "force": o.force_code,
                         "due_at": o.due_at.isoformat(), "overdue_hours": round(o.overdue_by.total_seconds() / 3600, 1)}
                        for o in d.overdue],
            "evidence_grades": d.grades, "likely_victims": d.likely_victims, "fraud_records": d.fraud_records,
            "persons": d.persons}


@router.get("/funnel", summary="The funnel (ore report funnel)")
def funnel(who: Who, srv: Srv, by: Literal["force", "band"] | None = None,
           operation: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    from ore.cases import funnel as run_funnel

    with actions.acting(srv.store, who, "reporting", "report.read", "report the funnel") as s:
        f = run_funnel(s, by=by, operation=operation)
    return {"by": by, "total": f.total.counts, "rows": {r.group: r.counts for r in f.rows},
            "median_hours_to_first_action": {b: None if d is None else round(d.total_seconds() / 3600, 2)
                                             for b, d in f.median_to_first_action.items()}}


@router.get("/overdue", summary="Disseminated cases past their deadline (ore cases overdue)")
def overdue(who: Who, srv: Srv, force: Annotated[str | None, Query(max_length=20)] = None) -> list[dict[str, Any]]:
    from ore.cases import overdue as run_overdue

    with actions.acting(srv.store, who, "investigation", "cases.read", "list overdue cases") as s:
        return [{"person": o.person_ref, "name": o.display_name, "band": o.band, "force": o.force_code,
                 "status": o.status, "due_at": o.due_at.isoformat(),
                 "overdue_hours": round(o.overdue_by.total_seconds() / 3600, 1)} for o in run_overdue(s, force=force)]


@router.post("/imports", summary="Upload a package (+ mapping, reference zip) and triage it in the background")
async def import_start(who: Who, srv: Srv, package: Annotated[UploadFile, File()],
                       mapping: Annotated[UploadFile | None, File()] = None,
                       reference: Annotated[UploadFile | None, File()] = None) -> dict[str, Any]:
    from ore.web.pages import start_import

    return (await start_import(srv, who, package, mapping, reference)).as_dict()


@router.get("/imports", summary="Import jobs of this server")
def imports(who: Who, srv: Srv) -> list[dict[str, Any]]:
    who.require("cases.import", "see import jobs")
    return [j.as_dict() for j in srv.jobs.list(who)]


@router.get("/imports/{job_id}", summary="One import job: progress, validation results, triage and import counts")
def import_job(job_id: Annotated[str, Field(max_length=64)], who: Who, srv: Srv) -> dict[str, Any]:
    who.require("cases.import", "see import jobs")
    return srv.jobs.get(job_id, who).as_dict()


@router.get("/quarantine", summary="Quarantined rows of a package (card numbers masked)")
def quarantine(who: Who, srv: Srv, package_id: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> list[dict[str, Any]]:
    from ore.ingest.quarantine import quarantined_rows

    who.require("cases.import", "see quarantined rows")
    return [{k: (v if isinstance(v, (int, float, str)) or v is None else str(v)) for k, v in r.items()}
            for r in quarantined_rows(srv.ws, package_id)[:limit]]


@router.get("/audit", summary="Search the audit log (auditors); the search is itself logged")
def audit(who: Who, srv: Srv, person: Annotated[str | None, Query(max_length=64)] = None,
          user: Annotated[str | None, Query(max_length=100)] = None, since: datetime | None = None,
          until: datetime | None = None, action: Annotated[str | None, Query(max_length=100)] = None,
          category: Annotated[str | None, Query(max_length=30)] = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[dict[str, Any]]:
    from ore.audit import search

    with actions.acting(srv.store, who, "audit", "audit.read", "search the audit log") as s:
        return [{"seq": e.seq, "at": e.at.isoformat(timespec="milliseconds"), "user": e.username,
                 "action": e.action, "category": e.category, "purpose": e.purpose, "outcome": e.outcome,
                 "objects": e.objects, "detail": e.detail}
                for e in search(s, who, person=person, user=user, since=since, until=until, action=action,
                                category=category, limit=limit)]


def verify(srv: Server, who: Principal) -> dict[str, Any]:
    """``ore audit verify`` (without a checkpoint): the walk, then its own audit entry."""
    from ore.audit import record_for, verify_chain

    with actions.acting(srv.store, who, "audit", "audit.verify", "verify the audit log") as s:
        v = verify_chain(s)
    with srv.store.session(who) as s:
        record_for(s, action="audit.verify", category="consultation", default_purpose="audit",
                   outcome="ok" if v.ok else f"failed: {v.problem}")
    return {"ok": v.ok, "entries": v.entries, "last_seq": v.last_seq, "first_bad": v.first_bad, "problem": v.problem}


@router.get("/audit/verify", summary="Walk the audit hash chain (ore audit verify)")
def audit_verify(who: Who, srv: Srv) -> dict[str, Any]:
    return verify(srv, who)


def add_user_generated(srv: Server, who: Principal, name: str, roles: list[str], force: str | None) -> dict[str, Any]:
    """``ore users add NAME --role R --generate``: a one-time password, shown once."""
    from ore.auth.users import add_user

    password = secrets.token_urlsafe(12)
    with actions.acting(srv.store, who, "administration", "users.manage", "add users") as s:
        user = add_user(s, who, name, password, roles, force)
        return {"name": user.username, "roles": user.roles.split(), "force": user.force_code,
                "one_time_password": password}


def change_user(srv: Server, who: Principal, name: str, what: str) -> None:
    """``ore users disable|unlock NAME`` (and ``--enable``)."""
    from ore.auth.users import set_disabled, unlock

    from ore.errors import OreError

    with actions.acting(srv.store, who, "administration", "users.manage", "change users") as s:
        if what == "disable":
            set_disabled(s, who, name, True)
        elif what == "enable":
            set_disabled(s, who, name, False)
        elif what == "unlock":
            unlock(s, who, name)
        else:
            raise OreError(f"no user action {what!r}: disable, enable or unlock")


@router.get("/users", summary="Users (admins)")
def users(who: Who, srv: Srv) -> list[dict[str, Any]]:
    from ore.auth.users import list_users

    with actions.acting(srv.store, who, "administration", "users.manage", "list users") as s:
        return [{"name": u.username, "roles": u.roles.split(), "force": u.force_code, "disabled": u.disabled,
                 "locked": u.locked_at is not None} for u in list_users(s, who)]


@router.post("/users", summary="Add a user with a one-time password (shown once)")
def users_add(body: UserIn, who: Who, srv: Srv) -> dict[str, Any]:
    return add_user_generated(srv, who, body.name, list(body.roles), body.force)


@router.post("/users/{name}/{what}", summary="Disable, enable or unlock a user")
def users_change(name: Annotated[str, Field(max_length=100)], what: Literal["disable", "enable", "unlock"],
                 who: Who, srv: Srv) -> dict[str, Any]:
    change_user(srv, who, name, what)
    return {"name": name, "done": what}

@router.get("/alerts", summary="Watch alerts the user may see (an offender manager: their force's), ranked by CPORT")
def alerts(who: Who, srv: Srv) -> list[dict[str, Any]]:
    return actions.watch_alerts(srv.store, who)
