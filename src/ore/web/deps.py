"""Per-request context: the server's workspace and store, the signed-in user, and error answers.

The user comes from ``ore.auth.sessions`` (``resume_session`` for a page's cookie,
``token_principal`` for an API token): the web holds no user state of its own, and a
user disabled or locked by ``ore users`` is refused at their next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from ore.auth.principal import AccessDenied, Principal
from ore.auth.sessions import SignInFailed, resume_session, token_principal
from ore.errors import OreError
from ore.store import CaseConflict, Store, StoreBusy
from ore.web.security import SESSION_COOKIE, RateLimiter, csrf_token
from ore.workspace import Workspace

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@dataclass
class Server:
    """What every request shares: the workspace, its case store, the CSRF key, the jobs, the login limiter."""

    ws: Workspace
    store: Store
    key: bytes
    jobs: Any
    limiter: RateLimiter


def server(request: Request) -> Server:
    return request.app.state.ore


class NeedSignIn(Exception):
    """A page asked for without a live session: the answer is the sign-in page."""

    def __init__(self, message: str = "") -> None:
        self.message = message


class MustChangePassword(Exception):
    """The user signed in with a one-time password: only the password page is open to them."""


@dataclass
class PageUser:
    who: Principal
    secret: str  # the session secret (for the CSRF token)
    csrf: str


def page_user(request: Request, srv: Server = Depends(server)) -> PageUser:
    """The signed-in user of a page; raises ``NeedSignIn`` (answered by a redirect) when there is none."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise NeedSignIn()
    try:
        signed = resume_session(srv.store, secret)
    except SignInFailed as e:
        raise NeedSignIn(str(e)) from None
    if signed.must_change_password and request.url.path != "/password":
        raise MustChangePassword()
    user = PageUser(signed.principal, secret, csrf_token(srv.key, secret))
    request.state.user = user
    return user


bearer = HTTPBearer(auto_error=False, description="An API token from `ore tokens create NAME --scope ...`")


class ApiUnauthorised(OreError):
    """No token, or one that is unknown, revoked or expired."""


def api_user(creds: HTTPAuthorizationCredentials | None = Depends(bearer), srv: Server = Depends(server)) -> Principal:
    """The principal an API token acts as (its user, narrowed to its scopes)."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise ApiUnauthorised("an API token is needed: Authorization: Bearer <token> (ore tokens create)")
    try:
        return token_principal(srv.store, creds.credentials.strip())
    except SignInFailed as e:
        raise ApiUnauthorised(str(e)) from None


def status_for(e: Exception) -> int:
    """The HTTP status that says what kind of refusal an ``OreError`` is; a hidden case is a missing one."""
    from ore.auth.approvals import ApprovalNeeded
    from ore.cases.disseminate import DisseminationRefused
    from ore.cases.lifecycle import TransitionRefused

    msg = str(e)
    if isinstance(e, (ApiUnauthorised, SignInFailed)):
        return 401
    if isinstance(e, AccessDenied):
        return 403
    if msg.startswith(("no case for person", "no import job", "no approval request", "no user ", "no token ")):
        return 404
    if isinstance(e, (CaseConflict, TransitionRefused, ApprovalNeeded, DisseminationRefused)):
        return 409
    if isinstance(e, StoreBusy):
        return 503  # nothing was saved; the same request again may succeed
    return 400


def nav(who: Principal) -> list[tuple[str, str]]:
    """The menu a role sees: only what the user may open."""
    items = [("/", "Dashboard", "report.read"), ("/queue", "Queue", "cases.read"), ("/import", "Import", "cases.import"),
             ("/approvals", "Approvals", "approvals.grant"), ("/audit", "Audit", "audit.read"),
             ("/users", "Users", "users.manage"), ("/alerts", "Watch alerts", "alerts.read")]
    out = [(href, label) for href, label, perm in items if who.can(perm)]
    if who.can("cases.disseminate") and ("/approvals", "Approvals") not in out:
        out.append(("/approvals", "Approvals"))
    return out
