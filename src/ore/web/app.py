"""The FastAPI application: pages, the API, static assets served by ore itself, errors answered plainly.

``create_app(workspace)`` opens the workspace's case store (migrated on first use, the
first admin made on first run as the command line does) and wires the rest.
``/healthz`` (the process answers) and ``/readyz`` (the case store answers at the newest
schema and the workspace is writable) need no sign-in and say nothing about any person. Assets
(htmx, cytoscape.js, the stylesheet and ore's own script) are files in ``static/``: a
police network is often offline, so nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ore import __version__
from ore.errors import OreError
from ore.store import Store
from ore.web.deps import MustChangePassword, NeedSignIn, Server, status_for
from ore.web.jobs import Jobs
from ore.web.security import RateLimiter, SecurityHeaders
from ore.workspace import Workspace

STATIC = Path(__file__).parent / "static"
RETRY_AFTER_SECONDS = 5  # a busy store (another writer past ORE_BUSY_TIMEOUT) is usually free again in seconds


def _health(app: FastAPI, ws: Workspace, store: Store) -> None:
    """Probes for a load balancer or orchestrator: outside the API schema, no sign-in, no personal data."""
    from ore.store import current_revision, head_revision

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__}, headers={"Cache-Control": "no-store"})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        head = head_revision()
        try:
            current = current_revision(store.engine)
            checks["case_store"] = "ok" if current == head else f"schema {current}, needs {head}"
        except Exception as e:  # noqa: BLE001 - any failure to reach the store means: not ready
            checks["case_store"] = f"unreachable ({type(e).__name__})"
        try:
            fd, tmp = tempfile.mkstemp(prefix=".readyz-", dir=ws.root)
            os.close(fd)
            os.unlink(tmp)
            checks["workspace"] = "ok"
        except OSError as e:
            checks["workspace"] = f"not writable ({e.strerror})"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


def create_app(ws: Workspace, *, reference: Path | None = None, postcodes: Path | None = None,
               login_limit: int = 10, key: bytes | None = None, threads: int = 40) -> FastAPI:
    """The application for one workspace; ``reference`` and ``postcodes`` are used by every web import."""
    from ore.auth.users import ensure_first_admin
    from ore.store import store_for

    store = store_for(ws)
    with store.session() as s:
        first = ensure_first_admin(s)
    if first is not None:
        print(f"First run: created the administrator {first.username!r} with the one-time password\n\n"
              f"    {first.password}\n\nIt is shown only now; sign in and choose your own.", file=sys.stderr)
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Routes are sync (SQLAlchemy sessions) and run in anyio's thread pool: size it for concurrent users.
        # No more threads than the engine's pool holds connections: past that, requests wait for a
        # connection 30 s and fail with a 500 instead of queueing (measured: 50 clients on PostgreSQL).
        pool = store.engine.pool
        limit = threads if not hasattr(pool, "size") else min(threads, pool.size() + getattr(pool, "_max_overflow", 0))
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(1, limit)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="ore", version=__version__,
        description="Triage of bulk payment-record leads: the queue, persons, cases, dissemination, the funnel. "
                    "Authenticate with an API token (`ore tokens create NAME --scope ...`).",
        docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json",
    )
    app.state.ore = Server(ws, store, key or secrets.token_bytes(32), Jobs(ws, store, reference, postcodes),
                           RateLimiter(login_limit, 60.0))
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    from ore.web import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    _health(app, ws, store)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(OreError)
    async def ore_error(request: Request, e: OreError) -> Response:
        status = status_for(e)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 and is_api(request) else {}
        if status == 503:  # the store is busy: nothing was saved, and a client may try again shortly
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if is_api(request):
            return JSONResponse({"detail": str(e)}, status_code=status, headers=headers or None)
        from ore.web.pages import render

        page = render(request, "error.html", {"message": str(e), "status": status, "path": request.url.path}, status)
        page.headers.update(headers)
        return page

    @app.exception_handler(NeedSignIn)
    async def need_sign_in(request: Request, e: NeedSignIn) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(MustChangePassword)
    async def must_change(request: Request, e: MustChangePassword) -> Response:
        return RedirectResponse("/password", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> Response:
        errors = [{"loc": list(x.get("loc", ())), "msg": x.get("msg", "")} for x in e.errors()]
        if is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        from ore.web.pages import render

        text = "; ".join(f"{'.'.join(str(p) for p in x['loc'][1:])}: {x['msg']}" for x in errors)
        return render(request, "error.html", {"message": f"the form is not complete: {text}", "status": 422,
                                              "path": request.url.path}, 422)

    return app
