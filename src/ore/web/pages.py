"""The server-rendered pages (Jinja2 + htmx). Each calls the functions its ``ore`` command calls.

A page that changes something is a POST form with the CSRF token; success redirects
(303) back to the page, a refusal is shown with the rule or permission that refused it
and an HTTP status that says which (404 for another force's person, as for a missing one).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ore.auth.principal import Principal
from ore.errors import OreError
from ore.cases import views
from ore.web import actions
from ore.web.deps import TEMPLATES, PageUser, Server, nav, page_user, server
from ore.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    new_prelogin,
    set_cookie,
)

router = APIRouter(include_in_schema=False)
MAX_UPLOAD = 2 * 1024**3


def render(request: Request, template: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    user: PageUser | None = getattr(request.state, "user", None)
    base = {"request": request, "user": user, "who": user.who if user else None,
            "nav": nav(user.who) if user else [], "csrf": user.csrf if user else ""}
    return TEMPLATES.TemplateResponse(request, template, {**base, **ctx}, status_code=status)


async def check_csrf(request: Request, user: PageUser = Depends(page_user), srv: Server = Depends(server)) -> PageUser:
    """A changing request must carry the session's CSRF token (form field or htmx header)."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        form = await request.form()
        v = form.get(CSRF_FIELD)
        given = v if isinstance(v, str) else None
    if not csrf_ok(srv.key, user.secret, given):
        raise OreError("the form has expired or did not come from this site (CSRF check): reload the page")
    return user


User = Annotated[PageUser, Depends(page_user)]
Changing = Annotated[PageUser, Depends(check_csrf)]
Srv = Annotated[Server, Depends(server)]


def back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# --- signing in ---------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, srv: Srv, error: str | None = None) -> HTMLResponse:
    pre = request.cookies.get(PRELOGIN_COOKIE) or new_prelogin()
    resp = render(request, "login.html", {"login_csrf": csrf_token(srv.key, pre, "login"), "error": error})
    set_cookie(resp, PRELOGIN_COOKIE, pre)
    return resp


@router.post("/login")
def login(request: Request, srv: Srv, username: Annotated[str, Form()], password: Annotated[str, Form()],
          csrf_token_: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    from ore.auth.sessions import SignInFailed, open_session, sign_in

    pre = request.cookies.get(PRELOGIN_COOKIE)
    if not csrf_ok(srv.key, pre, csrf_token_, "login"):
        return login_page(request, srv, "The sign-in form expired: try again.")
    client = request.client.host if request.client else "?"
    if not srv.limiter.allow(f"ip:{client}", f"user:{username.lower()}"):
        resp = login_page(request, srv, "Too many sign-in attempts: wait a minute and try again.")
        resp.status_code = 429
        return resp
    try:
        signed = sign_in(srv.store, username.strip(), password)
    except SignInFailed as e:
        resp = login_page(request, srv, str(e))
        resp.status_code = 401
        return resp
    secret = open_session(srv.store, signed.principal)
    resp = back("/password" if signed.must_change_password else "/")
    set_cookie(resp, SESSION_COOKIE, secret)
    resp.delete_cookie(PRELOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return resp


@router.post("/logout")
def logout(user: Changing, srv: Srv) -> Response:
    from ore.auth.sessions import end_session

    end_session(srv.store, user.secret)
    resp = back("/login")
    resp.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return resp


@router.get("/password")
def password_page(request: Request, user: User, error: str | None = None) -> HTMLResponse:
    return render(request, "password.html", {"error": error})


@router.post("/password")
def password_change(request: Request, user: Changing, srv: Srv, old: Annotated[str, Form()],
                    new: Annotated[str, Form()], again: Annotated[str, Form()]) -> Response:
    from ore.auth.sessions import change_password

    if new != again:
        return render(request, "password.html", {"error": "The two new passwords differ."}, 400)
    try:
        change_password(srv.store, user.who.username, old, new)
    except OreError as e:
        return render(request, "password.html", {"error": str(e)}, 400)
    return back("/")


# --- dashboard, queue ---------------------------------------------------------------------------


@router.get("/")
def dashboard_page(request: Request, user: User, srv: Srv) -> HTMLResponse:
    if not user.who.can("report.read"):
        return back("/alerts" if user.who.can("alerts.read") else "/password")  # type: ignore[return-value]
    with actions.acting(srv.store, user.who, "reporting", "report.read", "see the dashboard") as s:
        d = views.dashboard(s)
    return render(request, "dashboard.html", {"d": d, "labels": _labels()})


def _labels() -> dict[str, str]:
    from ore.report.funnel import LABELS

    return LABELS


def _filters(band: str | None, force: str | None, grade: str | None, status: str | None, package: str | None,
             q: str | None, sort: str, desc: bool, page: int, per_page: int) -> views.QueueFilters:
    return views.QueueFilters(band or None, force or None, grade or None, status or None, package or None, q or None,
                              sort, desc, page, per_page)


@router.get("/queue")
def queue_page(request: Request, user: User, srv: Srv, band: str | None = None, force: str | None = None,
               grade: str | None = None, status: str | None = None, package: str | None = None,
               q: str | None = None, sort: str = "band", desc: bool = False, page: int = 1,
               per_page: int = 50) -> HTMLResponse:
    from ore.cases import STATES

    f = _filters(band, force, grade, status, package, q, sort, desc, page, per_page)
    with actions.acting(srv.store, user.who, "investigation", "cases.read", "see the queue") as s:
        result = views.queue(s, f, srv.ws)
    ctx = {"page": result, "f": f, "bands": views.BANDS, "grades": views.GRADES, "states": STATES,
           "sorts": list(views.SORTS)}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "queue-results":
        return render(request, "_queue_results.html", ctx)
    return render(request, "queue.html", ctx)


# --- a person -----------------------------------------------------------------------------------


def _person(request: Request, user: PageUser, srv: Server, ref: str, package: str | None,
            error: str | None = None, status: int = 200) -> HTMLResponse:
    with actions.acting(srv.store, user.who, "investigation", "cases.read", "see persons") as s:
        p = views.person_page(s, ref, package)
        resp = render(request, "person.html", {"p": p, "v": p.view, "c": p.view.case, "person": p.view.case.person,
                                               "error": error, "package": package}, status)
    return resp


@router.get("/persons/{ref}")
def person_page(request: Request, ref: str, user: User, srv: Srv, package: str | None = None) -> HTMLResponse:
    return _person(request, user, srv, ref, package)


@router.get("/subjects/{ref}")
def subject_page(request: Request, ref: str, user: User, srv: Srv, package: str | None = None) -> HTMLResponse:
    """An unidentified subject: the same case page (their records, identifiers and link chart)."""
    return _person(request, user, srv, ref, package)


@router.get("/persons/{ref}/sources")
def person_sources(request: Request, ref: str, user: User, srv: Srv, package: str | None = None) -> HTMLResponse:
    """The identity each record gave (htmx fragment, loaded after the page: it reads the bulk tables)."""
    from ore.cases import find_case
    from ore.cases.queries import consulted

    with actions.acting(srv.store, user.who, "investigation", "cases.read", "see persons") as s:
        case = find_case(s, ref, package)
        refs = [r for (r,) in s.execute(_record_refs(case.person_id))]
        consulted(s, "web.sources", [case.person.person_ref], {"records": len(refs)})
        pkg = case.person.package.package_ref
    rows, note = views.record_sources(srv.ws, refs, pkg)
    return render(request, "_sources.html", {"rows": rows, "note": note})


def _record_refs(person_id: int) -> Any:
    from sqlalchemy import or_, select

    from ore.store.models import Record

    return select(Record.record_ref).where(or_(Record.person_id == person_id, Record.subject_id == person_id))


@router.get("/persons/{ref}/graph.json")
def person_graph(ref: str, user: User, srv: Srv, package: str | None = None) -> JSONResponse:
    with actions.acting(srv.store, user.who, "investigation", "cases.read", "see persons") as s:
        g = views.link_chart(s, srv.ws, ref, package)
    return JSONResponse(g.as_dict())


def _after(ref: str, package: str | None) -> RedirectResponse:
    return back(f"/persons/{ref}" + (f"?package={package}" if package else ""))


@router.post("/persons/{ref}/step")
def person_step(request: Request, ref: str, user: Changing, srv: Srv, to: Annotated[str, Form()],
                reason: Annotated[str, Form()] = "", band: Annotated[str, Form()] = "",
                ground: Annotated[str, Form()] = "", override_by: Annotated[str, Form()] = "",
                override_reason: Annotated[str, Form()] = "", package: Annotated[str, Form()] = "") -> Response:
    actions.take_step(srv.store, user.who, ref, to, reason=reason, package=package or None, band=band or None,
                      ground=ground or None, override_by=override_by or None, override_reason=override_reason or None)
    return _after(ref, package or None)


@router.post("/persons/{ref}/safeguarding")
def person_safeguarding(ref: str, user: Changing, srv: Srv, identified: Annotated[int, Form()],
                        safeguarded: Annotated[int, Form()], agency: Annotated[str, Form()],
                        identified_on: Annotated[str, Form()] = "", safeguarded_on: Annotated[str, Form()] = "",
                        package: Annotated[str, Form()] = "") -> Response:
    actions.add_safeguarding(srv.store, user.who, ref, identified=identified, safeguarded=safeguarded, agency=agency,
                             identified_on=actions.day(identified_on, "identified on"),
                             safeguarded_on=actions.day(safeguarded_on, "safeguarded on"), package=package or None)
    return _after(ref, package or None)


@router.post("/persons/{ref}/seal")
def person_seal(ref: str, user: Changing, srv: Srv, reason: Annotated[str, Form()],
                package: Annotated[str, Form()] = "") -> Response:
    actions.seal_person(srv.store, user.who, ref, reason=reason, package=package or None)
    return back("/queue")


@router.post("/persons/{ref}/disseminate")
def person_disseminate(request: Request, ref: str, user: Changing, srv: Srv, force: Annotated[str, Form()],
                       reason: Annotated[str, Form()] = "", approval: Annotated[str, Form()] = "",
                       package: Annotated[str, Form()] = "") -> Response:
    result = actions.disseminate(srv.store, srv.ws, user.who, force.strip().upper(), persons=[ref],
                                 reason=reason or None, approval=int(approval) if approval.strip().isdigit() else None,
                                 package=package or None)
    return render(request, "disseminated.html", {"r": result, "ref": ref})


# --- import -------------------------------------------------------------------------------------


@router.get("/import")
def import_page(request: Request, user: User, srv: Srv) -> HTMLResponse:
    user.who.require("cases.import", "import packages")
    return render(request, "import.html", {"jobs": srv.jobs.list(user.who), "reference": srv.jobs.reference})


async def save_upload(upload: UploadFile, dest: Path) -> Path:
    """Write an upload to ``dest`` (a bare file name only), refusing one larger than ``MAX_UPLOAD``."""
    name = Path(upload.filename or "upload").name.replace("\x00", "") or "upload"
    path = dest / name
    size = 0
    with path.open("wb") as f:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise OreError(f"{name} is larger than {MAX_UPLOAD // 1024**3} GiB")
            f.write(chunk)
    return path


async def start_import(srv: Server, who: Principal, package: UploadFile, mapping: UploadFile | None,
                       reference: UploadFile | None) -> Any:
    """Save the uploads in ``WORKSPACE/uploads/JOB`` and start the triage job."""
    from ore.web.jobs import safe_extract

    who.require("cases.import", "import and triage a package")
    job_id = secrets.token_hex(6)
    dest = actions.upload_dir(srv.ws, job_id)
    pkg = await save_upload(package, dest)
    if pkg.suffix.lower() != ".zip" and pkg.suffix.lower() not in (".csv", ".xlsx"):
        raise OreError("upload the package as a .zip (manifest and CSV files), or a bare .csv/.xlsx export")
    map_path = await save_upload(mapping, dest) if mapping is not None and mapping.filename else None
    ref_dir = None
    if reference is not None and reference.filename:
        ref_zip = await save_upload(reference, dest)
        (dest / "reference").mkdir()
        ref_dir = safe_extract(ref_zip, dest / "reference")
    return srv.jobs.start(who, pkg, mapping=map_path, reference=ref_dir, package_name=pkg.name, job_id=job_id)


@router.post("/import")
async def import_upload(request: Request, user: Changing, srv: Srv, package: Annotated[UploadFile, File()],
                        mapping: Annotated[UploadFile | None, File()] = None,
                        reference: Annotated[UploadFile | None, File()] = None) -> Response:
    job = await start_import(srv, user.who, package, mapping, reference)
    return back(f"/import/jobs/{job.id}")


@router.get("/import/jobs/{job_id}")
def import_job(request: Request, job_id: str, user: User, srv: Srv) -> HTMLResponse:
    job = srv.jobs.get(job_id, user.who)
    quarantine: list[dict[str, Any]] = []
    if job.state == "done" and job.package_id:
        from ore.ingest.quarantine import quarantined_rows

        quarantine = quarantined_rows(srv.ws, job.package_id)[:500]
    ctx = {"job": job, "quarantine": quarantine}
    if request.headers.get("hx-request"):
        return render(request, "_job.html", ctx)
    return render(request, "job.html", ctx)


# --- approvals, audit, users, alerts ----------------------------------------------------------


@router.get("/approvals")
def approvals_page(request: Request, user: User, srv: Srv) -> HTMLResponse:
    return render(request, "approvals.html", {"approvals": actions.open_approvals(srv.store, user.who)})


@router.post("/approvals")
def approvals_request(user: Changing, srv: Srv, action: Annotated[str, Form()], obj: Annotated[str, Form()],
                      reason: Annotated[str, Form()] = "", person: Annotated[str, Form()] = "") -> Response:
    actions.request_approval(srv.store, user.who, action, obj.strip(), reason)
    return back(f"/persons/{person}" if person else "/approvals")


@router.post("/approvals/{approval_id}/grant")
def approvals_grant(approval_id: int, user: Changing, srv: Srv) -> Response:
    actions.grant_approval(srv.store, user.who, approval_id)
    return back("/approvals")


@router.get("/audit")
def audit_page(request: Request, user: User, srv: Srv, person: str | None = None, by_user: str | None = None,
               action: str | None = None, category: str | None = None, limit: int = 200) -> HTMLResponse:
    from ore.audit import search

    with actions.acting(srv.store, user.who, "audit", "audit.read", "search the audit log") as s:
        entries = [(e.seq, e.at, e.username, e.action, e.category, e.purpose, e.outcome, e.objects, e.detail)
                   for e in search(s, user.who, person=person or None, user=by_user or None, action=action or None,
                                   category=category or None, limit=max(1, min(limit, 2000)))]
    return render(request, "audit.html", {"entries": entries, "q": {"person": person or "", "by_user": by_user or "",
                                                                    "action": action or "", "category": category or ""}})


@router.get("/audit/verify")
def audit_verify_page(request: Request, user: User, srv: Srv) -> HTMLResponse:
    from ore.web.api import verify

    return render(request, "verify.html", {"v": verify(srv, user.who)})


@router.get("/users")
def users_page(request: Request, user: User, srv: Srv, created: str | None = None) -> HTMLResponse:
    from ore.auth.policy import load_policy
    from ore.auth.users import list_users

    with actions.acting(srv.store, user.who, "administration", "users.manage", "list users") as s:
        users = [{"name": u.username, "roles": u.roles, "force": u.force_code, "disabled": u.disabled,
                  "locked": u.locked_at is not None, "must_change": u.must_change_password}
                 for u in list_users(s, user.who)]
    return render(request, "users.html", {"users": users, "roles": list(load_policy().roles)})


@router.post("/users")
def users_add(request: Request, user: Changing, srv: Srv, name: Annotated[str, Form()],
              roles: Annotated[list[str], Form()], force: Annotated[str, Form()] = "") -> Response:
    from ore.web.api import add_user_generated

    created = add_user_generated(srv, user.who, name, roles, force or None)
    return render(request, "user_added.html", {"created": created})


@router.post("/users/{name}/{what}")
def users_change(name: str, what: str, user: Changing, srv: Srv) -> Response:
    from ore.web.api import change_user

    change_user(srv, user.who, name, what)
    return back("/users")


@router.get("/alerts")
def alerts_page(request: Request, user: User, srv: Srv) -> HTMLResponse:
    """The watch alerts this user may see (an offender manager: their force's), ranked by CPORT."""
    return render(request, "alerts.html", {"alerts": actions.watch_alerts(srv.store, user.who)})
