"""The pages' protections: cookies, CSRF, login rate limit, headers, scoping, and a view is an audit entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from casekit import T0, add_people, make_user
from sqlalchemy import select
from webkit import app_for, client, csrf_of, sign_in

from ore.cases import transition
from ore.store import Store
from ore.store.access import AuditEntry
from ore.store.models import Case

REF = "PER000000"


@pytest.fixture
def site(store: Store, tmp_path: Path):
    """Two MPS persons (the first disseminated to MPS) and a user per role; the app over them."""
    add_people(store, 2, force="MPS", band="P2")
    with store.session() as s:
        first = s.scalars(select(Case).order_by(Case.id)).first()
        transition(s, first, "triaged", by="sgt", reason="ok", band="P2", at=T0)
        transition(s, first, "disseminated", by="sgt", reason="go", at=T0)
    for name, role, force in (("ana", "analyst", None), ("sup", "supervisor", None), ("dc.mps", "investigator", "MPS"),
                              ("dc.gmp", "investigator", "GMP"), ("aud", "auditor", None), ("adm", "admin", None),
                              ("om", "offender_manager", "MPS")):
        make_user(store, name, role, force)
    app = app_for(store, tmp_path / "ws", login_limit=5)
    yield app
    app.state.ore.store.dispose()


def test_session_cookie_is_host_prefixed_secure_httponly_strict(site) -> None:
    c = client(site)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    r = c.post("/login", data={"username": "ana", "password": "correct horse battery", "csrf_token": token})
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("__Host-ore_session=")][0].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "domain" not in cookie


def test_security_headers_and_no_store(site) -> None:
    c = client(site)
    sign_in(c, "ana")
    r = c.get(f"/persons/{REF}")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in r.text and " style=" not in r.text and " onclick" not in r.text
    assert c.get("/static/htmx.min.js").headers["cache-control"].startswith("public")


def test_a_form_without_the_csrf_token_is_refused(site) -> None:
    c = client(site)
    sign_in(c, "sup")
    r = c.post(f"/persons/{REF}/step", data={"to": "accepted", "reason": "r"})
    assert r.status_code == 400 and "CSRF" in r.text
    r = c.post(f"/persons/{REF}/step", data={"to": "accepted", "reason": "r", "csrf_token": "0" * 64})
    assert r.status_code == 400
    r = c.post(f"/persons/{REF}/step", data={"to": "accepted", "reason": "r", "csrf_token": csrf_of(c)})
    assert r.status_code == 303
    # the login form is tied to its pre-login cookie too
    fresh = client(site)
    assert fresh.post("/login", data={"username": "ana", "password": "correct horse battery",
                                      "csrf_token": "x"}).status_code == 200
    assert "__Host-ore_session" not in fresh.cookies


def test_sign_in_is_rate_limited_before_the_lock_out(site) -> None:
    c = client(site)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', c.get("/login").text).group(1)
    codes = [c.post("/login", data={"username": f"nobody{i}", "password": "wrong password",
                                    "csrf_token": token}).status_code for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]


def test_navigation_follows_the_role(site) -> None:
    # the national unit and the auditor read watch alerts too (alerts.read in roles.yaml)
    expected = {"ana": ["Dashboard", "Queue", "Import", "Watch alerts"],
                "sup": ["Dashboard", "Queue", "Import", "Approvals", "Watch alerts"],
                "dc.mps": ["Dashboard", "Queue"], "aud": ["Dashboard", "Queue", "Audit", "Watch alerts"],
                "adm": ["Dashboard", "Queue", "Approvals", "Users"], "om": ["Watch alerts"]}
    from ore.web.security import RateLimiter

    for name, labels in expected.items():
        site.state.ore.limiter = RateLimiter(5, 60.0)  # six sign-ins from one address would be limited
        c = client(site)
        sign_in(c, name)
        page = c.get("/", follow_redirects=True).text
        nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
        assert re.findall(r">([^<]+)</a>", nav) == labels, (name, nav)


def test_another_forces_person_page_is_404_and_a_view_is_an_audit_entry(site, store: Store) -> None:
    c = client(site)
    sign_in(c, "dc.gmp")
    r = c.get(f"/persons/{REF}")
    assert r.status_code == 404 and f"no case for person {REF}" in r.text
    assert c.get(f"/persons/{REF}/graph.json").status_code == 404
    c = client(site)
    sign_in(c, "dc.mps")
    assert c.get(f"/persons/{REF}").status_code == 200
    with store.session() as s:
        views = s.scalars(select(AuditEntry).where(AuditEntry.action == "cases.show",
                                                   AuditEntry.username == "dc.mps")).all()
    assert len(views) == 1 and REF in views[0].objects and views[0].category == "consultation"


def test_queue_filters_sorts_and_pages_in_sql(site) -> None:
    c = client(site)
    sign_in(c, "ana")
    r = c.get("/queue?per_page=1&sort=person&desc=true")
    assert "2 person(s); page 1 of 2" in r.text and "PER000001" in r.text and REF not in r.text
    r = c.get("/queue?status=disseminated")
    assert "1 person(s)" in r.text and REF in r.text
    r = c.get("/queue?q=Person%201")
    assert "PER000001" in r.text
    assert c.get("/queue?band=P9").status_code == 400


def test_signing_out_ends_the_session(site) -> None:
    c = client(site)
    token = sign_in(c, "ana")
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    assert c.get("/queue").status_code == 303  # to the sign-in page


def test_the_watch_alerts_page_answers_for_offender_managers_and_the_national_unit(site) -> None:
    from ore.web.security import RateLimiter

    for name, where in (("om", "for MPS"), ("ana", "No alerts")):
        site.state.ore.limiter = RateLimiter(5, 60.0)
        c = client(site)
        sign_in(c, name)
        page = c.get("/alerts")
        assert page.status_code == 200 and "Watch alerts" in page.text and where in page.text, (name, page.text[-500:])
    c = client(site)
    sign_in(c, "dc.mps")  # an investigator reads cases, not the watch
    assert c.get("/alerts").status_code in (403, 404)
