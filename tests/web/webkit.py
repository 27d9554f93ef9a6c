"""Shared by the web tests: an application over a test store, users and tokens per role, signing in."""

from __future__ import annotations

import re
from pathlib import Path

from casekit import PASSWORD, make_user
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ore.auth import SYSTEM
from ore.auth.policy import load_policy
from ore.auth.sessions import create_token
from ore.auth.users import get_user
from ore.config import get_settings
from ore.store import Store
from ore.web import create_app
from ore.workspace import Workspace

ROLES = ("analyst", "supervisor", "investigator", "offender_manager", "auditor", "admin")
BASE = "https://testserver"  # the session cookie is Secure: the test client must speak "https"


def store_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def workspace_for(store: Store, root: Path) -> Workspace:
    """A workspace whose case store is ``store`` (SQLite file or PostgreSQL database)."""
    return Workspace.open(root, get_settings(database_url=store_url(store)))


def app_for(store: Store, root: Path, **kw: object) -> FastAPI:
    return create_app(workspace_for(store, root), key=b"k" * 32, **kw)  # type: ignore[arg-type]


def token_for(store: Store, name: str, role: str, force: str | None = "MPS") -> str:
    """A user with one role and an API token holding every permission of that role."""
    make_user(store, name, role, force)
    from ore.auth.principal import principal_for

    with store.session() as s:
        user = get_user(s, name)
        who = principal_for(name, [role], force, user_id=user.id)
        _, secret = create_token(s, who, "test", sorted(load_policy().roles[role].permissions))
    return secret


def client(app: FastAPI) -> TestClient:
    return TestClient(app, base_url=BASE, follow_redirects=False)


def sign_in(c: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the page's CSRF token."""
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token, page.text
    r = c.post("/login", data={"username": name, "password": password, "csrf_token": token.group(1)})
    assert r.status_code == 303, r.text
    return csrf_of(c)


def csrf_of(c: TestClient) -> str:
    page = c.get("/queue") if False else c.get("/password")
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert m, page.text
    return m.group(1)


__all__ = ["BASE", "PASSWORD", "ROLES", "SYSTEM", "app_for", "client", "csrf_of", "make_user", "sign_in",
           "store_url", "token_for", "workspace_for"]
