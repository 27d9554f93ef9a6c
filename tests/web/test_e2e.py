"""The browser test: Playwright driving Debian's chromium against a real server (uvicorn, loopback).

An analyst imports the shared sample and triages it; a supervisor confirms a P1 band and,
with a second supervisor's approval (two-person rule), disseminates it; that force's
investigator records arrest, charge, conviction and one child safeguarded; the dashboard's
funnel shows them. Screenshots are kept in tests/artifacts/web/ (gitignored).
Never a Playwright-downloaded browser: ``executable_path=/usr/bin/chromium``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from casekit import PASSWORD, make_user
from shared_paths import SAMPLE
from sqlalchemy import select

from ore.config import get_settings
from ore.store.models import Case, Person
from ore.web import create_app
from ore.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not SAMPLE.exists(), reason=f"the shared sample is not at {SAMPLE}"),
]


def _zip(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(src.iterdir()):
            z.write(f, f.name)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Workspace]]:
    import uvicorn

    ws = Workspace.open(tmp_path / "ws", get_settings())
    app = create_app(ws)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://localhost:{port}", ws  # localhost: a secure context, so __Host-/Secure cookies work
    finally:
        srv.should_exit = True
        t.join(10)
        app.state.ore.store.dispose()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Shots:
    def __init__(self) -> None:
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)
        self.n = 0

    def __call__(self, page: object, name: str) -> None:
        self.n += 1
        page.screenshot(path=str(ARTIFACTS / f"{self.n:02d}-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _sign_in(browser: object, base: str, name: str) -> object:
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})  # type: ignore[attr-defined]
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # CSP violations and script errors show up here
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def _step(page: object, step: str, reason: str, **fields: str) -> None:
    form = page.locator(f"form[data-step={step}]")  # type: ignore[attr-defined]
    for name, value in fields.items():
        el = form.locator(f"[name={name}]")
        if el.evaluate("e => e.tagName") == "SELECT":
            el.select_option(value)
        else:
            el.fill(value)
    if reason:
        form.locator("[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]


def test_import_triage_disseminate_and_outcomes_in_the_browser(server: tuple[str, Workspace], browser: object,
                                                               tmp_path: Path) -> None:
    base, ws = server
    from ore.store import store_for

    store = store_for(ws)
    for name, role in (("ana.lyst", "analyst"), ("sup.one", "supervisor"), ("sup.two", "supervisor")):
        make_user(store, name, role)
    shots = Shots()
    package, reference = _zip(SAMPLE / "package", tmp_path / "package.zip"), _zip(SAMPLE / "reference",
                                                                                  tmp_path / "reference.zip")
    # --- the analyst imports and triages the sample
    page = _sign_in(browser, base, "ana.lyst")
    shots(page, "analyst-dashboard-empty")
    assert [a.inner_text() for a in page.locator("header nav a").all()] == ["Dashboard", "Queue", "Import",
                                                                           "Watch alerts"]
    page.click("text=Import")
    page.set_input_files("input[name=package]", str(package))
    page.set_input_files("input[name=reference]", str(reference))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#job[data-state=done], #job[data-state=failed]", timeout=240_000)
    shots(page, "import-done")
    assert page.locator("#job").get_attribute("data-state") == "done", page.locator("#job").inner_text()
    assert page.locator("#validation tbody tr").count() >= 1
    assert "Case store: imported" in page.locator("#imported").inner_text()
    page.click("text=Open the queue")
    page.wait_for_selector("table.queue tbody tr")
    shots(page, "queue")
    # search by the last four card digits narrows the queue (htmx, pushed into SQL)
    with store.session() as s:
        p1 = s.scalars(select(Person).join(Case, Case.person_id == Person.id).where(
            Case.recommended_band == "P1", Person.force_code.is_not(None), Person.evidence_grade == "A",
            Person.kind == "identified").order_by(Person.person_ref)).first()
        assert p1 is not None
        ref, force = p1.person_ref, p1.force_code
    page.fill("#q", ref)
    from playwright.sync_api import expect  # its waits need no eval (the CSP forbids it, rightly)

    expect(page.locator("table.queue tbody tr")).to_have_count(1)
    assert ref in page.locator("table.queue").inner_text()
    make_user(store, "dc.inv", "investigator", force)
    # --- a supervisor confirms the band and asks for approval; a second supervisor approves
    sup = _sign_in(browser, base, "sup.one")
    sup.goto(f"{base}/persons/{ref}")
    sup.wait_for_selector("#graph[data-nodes]")
    assert int(sup.locator("#graph").get_attribute("data-nodes")) > 1
    shots(sup, "person-before")
    _step(sup, "triaged", "P1 confirmed on the register link", band="P1")
    assert "triaged" in sup.locator("#case-status").inner_text()
    _step(sup, "request-approval", "one P1 person for the force")
    two = _sign_in(browser, base, "sup.two")
    two.goto(f"{base}/approvals")
    row = two.locator("#approvals tbody tr").first
    approval = row.get_attribute("data-approval")
    row.locator("button").click()
    two.wait_for_load_state("networkidle")
    assert "sup.two" in two.locator("#approvals").inner_text()
    shots(two, "approved")
    sup.goto(f"{base}/persons/{ref}")
    _step(sup, "disseminated", "P1 to the force", approval=str(approval))
    assert f"disseminated to {force}" in sup.locator("#disseminated").inner_text()
    shots(sup, "disseminated")
    # --- the force's investigator works the case to conviction and safeguarding
    inv = _sign_in(browser, base, "dc.inv")
    assert [a.inner_text() for a in inv.locator("header nav a").all()] == ["Dashboard", "Queue"]
    inv.goto(f"{base}/persons/{ref}")
    for step in ("accepted", "under_investigation", "arrested", "charged", "convicted"):
        _step(inv, step, f"{step} as recorded in the custody record")
        assert step in inv.locator("#case-status").inner_text(), inv.content()[:2000]
    _step(inv, "safeguard", "", identified="1", safeguarded="1", agency="Local authority")
    assert "1 identified, 1 safeguarded" in inv.locator("#children").inner_text()
    shots(inv, "person-after")
    inv.goto(f"{base}/")
    counts = {g.get_attribute("data-stage"): int(g.get_attribute("data-count"))
              for g in inv.locator("svg.funnel g.stage").all()}
    shots(inv, "investigator-dashboard")
    assert counts["disseminated"] == 1 and counts["arrested"] == 1 and counts["charged"] == 1
    assert counts["convicted"] == 1 and counts["children_safeguarded"] == 1
    # another force's investigator does not see the person: the page answers as for a missing one
    make_user(store, "dc.other", "investigator", "ZZZ")
    other = _sign_in(browser, base, "dc.other")
    resp = other.goto(f"{base}/persons/{ref}")
    assert resp.status == 404 and "no case for person" in other.locator("#error-message").inner_text()
    for p in (page, sup, two, inv):
        assert not p.errors, p.errors  # no CSP violation, no script error
    store.dispose()
