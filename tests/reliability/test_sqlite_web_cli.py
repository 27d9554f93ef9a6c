"""The web app and the CLI writing one SQLite workspace at once: no "database is locked" reaches a user.

``ore serve`` runs in its own process on a workspace whose cases were imported; while
threads hammer its API (show a person, which is an audited view; confirm a band;
record safeguarding), CLI processes take the same steps on the same cases and re-import
the triage. Every answer must be a success or a clear refusal (HTTP 4xx/503 with a
message; the CLI's one ``error:`` line and exit 2): no 500, no traceback, no
"database is locked". Every success is then found in the store, once, and the audit
chain is valid.

Why it failed before: SQLite transactions began deferred, so a request that read the
case and then wrote it after a CLI process had committed failed at once with
"database is locked" (a stale snapshot cannot wait its way to the lock). The store now
begins each session's transaction IMMEDIATE (``ore.store.engine``).

``ORE_SLOW_TESTS=1`` runs longer.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from casekit import PASSWORD, make_user, triage_scenario
from sqlalchemy import func, select, text

from ore.audit import verify_chain
from ore.auth.sessions import create_token, sign_in
from ore.cases import import_triage
from ore.store import StoreBusy, open_store, store_for
from ore.store.access import AuditEntry
from ore.store.models import Case, Person, Safeguarding, Transition

SLOW = os.environ.get("ORE_SLOW_TESTS") == "1"
WEB_THREADS = 4
WEB_REQUESTS = 60 if SLOW else 15  # per thread
CLI_THREADS = 2
CLI_COMMANDS = 15 if SLOW else 4  # per thread
SCOPES = ["cases.read", "cases.confirm_band", "cases.safeguard", "cases.import"]
UNCLEAR = ("database is locked", "OperationalError", "Traceback", "Internal Server Error")


@dataclass
class Served:
    url: str
    token: str
    refs: list[str]
    out: Path
    ws_root: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(ws_root: Path, token: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORE_TOKEN": token, "PYTHONPATH": os.pathsep.join(sys.path), **extra_env}
    env.pop("ORE_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "ore.cli", "-w", str(ws_root), *args], env=env, text=True,
                          capture_output=True, timeout=300)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.delenv("ORE_DATABASE_URL", raising=False)
    t = triage_scenario(tmp_path, people=1200, subscribers=80, seed=43)
    store = store_for(t.ws)
    try:
        import_triage(store, t.ws, t.out)
        make_user(store, "sup", "supervisor")
        who = sign_in(store, "sup", PASSWORD).principal
        with store.session(who) as s:
            _, token = create_token(s, who, "hammer", SCOPES, days=1)
        with store.session() as s:
            refs = list(s.scalars(select(Person.person_ref).where(Person.kind == "identified")
                                  .order_by(Person.person_ref).limit(3)))
    finally:
        store.dispose()
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with log.open("w", encoding="utf-8") as f:
        proc = subprocess.Popen([sys.executable, "-m", "ore.cli", "-w", str(t.ws.root), "serve", "--port", str(port)],
                                env=env, stdout=f, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        yield Served(url, token, refs, t.out, t.ws.root, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_web_and_cli_write_one_sqlite_workspace_at_once(served: Served) -> None:
    answers: list[tuple[str, int, str]] = []  # (what, status or exit code, text shown to the user)
    done: Counter[tuple[str, str]] = Counter()  # (ref, kind) committed
    lock = threading.Lock()

    def note(what: str, code: int, shown: str, ok: bool, ref: str, kind: str) -> None:
        with lock:
            answers.append((what, code, shown))
            if ok and kind:
                done[(ref, kind)] += 1

    def web(seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {served.token}"}
        with httpx.Client(base_url=served.url, headers=headers, timeout=120) as client:
            for i in range(WEB_REQUESTS):
                ref = rng.choice(served.refs)
                pick = i % 3
                if pick == 0:
                    r = client.get(f"/api/v1/persons/{ref}")
                    note("web show", r.status_code, r.text, r.status_code == 200, ref, "")
                elif pick == 1:
                    r = client.post(f"/api/v1/persons/{ref}/steps",
                                    json={"to": "triaged", "band": rng.choice(["P1", "P2"]), "reason": f"web {seed}.{i}"})
                    note("web step", r.status_code, r.text, r.status_code == 200, ref, "triaged")
                else:
                    r = client.post(f"/api/v1/persons/{ref}/safeguarding",
                                    json={"identified": 1, "safeguarded": 1, "agency": "LA"})
                    note("web safeguarding", r.status_code, r.text, r.status_code == 200, ref, "safeguarding")

    def cli(seed: int) -> None:
        rng = random.Random(1000 + seed)
        for i in range(CLI_COMMANDS):
            ref = rng.choice(served.refs)
            pick = i % 3
            if pick == 0:
                p = _cli(served.ws_root, served.token, "cases", "transition", ref, "triaged", "--band", "P3",
                         "--reason", f"cli {seed}.{i}")
                kind = "triaged"
            elif pick == 1:
                p = _cli(served.ws_root, served.token, "cases", "safeguard", ref, "--identified", "2",
                         "--safeguarded", "1", "--agency", "LA")
                kind = "safeguarding"
            else:
                p = _cli(served.ws_root, served.token, "cases", "import", str(served.out))
                kind = ""
            note(f"cli {p.args[5:7]}", p.returncode, p.stdout + p.stderr, p.returncode == 0, ref, kind)

    threads = [threading.Thread(target=web, args=(i,)) for i in range(WEB_THREADS)]
    threads += [threading.Thread(target=cli, args=(i,)) for i in range(CLI_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    assert not any(th.is_alive() for th in threads), "a client is still waiting after 10 minutes"

    assert len(answers) == WEB_THREADS * WEB_REQUESTS + CLI_THREADS * CLI_COMMANDS
    unclear = [a for a in answers if any(w in a[2] for w in UNCLEAR)]
    assert not unclear, unclear[:3]
    # each answer is a success or a clear refusal: HTTP 4xx/503 with a message, or the CLI's exit 2
    bad = [a for a in answers if a[0].startswith("web") and not (a[1] == 200 or (a[1] in (409, 503) and "detail" in a[2]))]
    bad += [a for a in answers if a[0].startswith("cli") and not (a[1] == 0 or (a[1] == 2 and "error:" in a[2]))]
    assert not bad, bad[:3]
    server_log = served.log.read_text(encoding="utf-8")
    assert not any(w in server_log for w in UNCLEAR), server_log[-3000:]

    store = open_store(f"sqlite:///{served.ws_root / 'cases.sqlite'}")
    try:
        with store.session() as s:
            for ref in served.refs:
                case = s.scalar(select(Case).join(Person).where(Person.person_ref == ref))
                steps = s.scalar(select(func.count()).select_from(Transition).where(Transition.case_id == case.id))
                assert steps == done[(ref, "triaged")] == case.event_count == case.version - 1
                rows = s.scalar(select(func.count()).select_from(Safeguarding).where(Safeguarding.case_id == case.id))
                assert rows == done[(ref, "safeguarding")]
            assert s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "cases.transition")) == sum(n for (_, k), n in done.items() if k == "triaged")
            check = verify_chain(s)
            assert check.ok, check
    finally:
        store.dispose()


def test_a_store_locked_past_the_busy_timeout_is_a_clear_busy_message(tmp_path: Path) -> None:
    """A writer holding the lock longer than another may wait: the other is told to try again, nothing half-done."""
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    holder, waiter = open_store(url), open_store(url, busy_timeout=0.3)
    try:
        with holder.session() as s:
            s.execute(text("SELECT 1"))  # the session's transaction holds the write lock from its start
            started = time.monotonic()
            with pytest.raises(StoreBusy, match="the case store is busy.*nothing of yours was saved.*Try again"):
                with waiter.session() as w:
                    w.execute(select(func.count()).select_from(Case))
            assert time.monotonic() - started >= 0.25  # it waited for the lock before giving up
        with waiter.session() as w:  # the lock released, the same work goes through
            assert w.scalar(select(func.count()).select_from(Case)) == 0
    finally:
        holder.dispose()
        waiter.dispose()


def test_a_session_waits_for_a_concurrent_writer_and_then_reads_its_step(tmp_path: Path) -> None:
    """Two sessions on one case: the second begins only once the first has committed, so it cannot act stale."""
    from casekit import add_people

    from ore.cases import transition

    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    store = open_store(url)
    try:
        (cid,) = add_people(store, 1)
        first_holds = threading.Event()
        seen: dict[str, Any] = {}

        def second() -> None:
            first_holds.wait(10)
            with store.session() as s:  # waits here for the first session's commit
                case = s.get(Case, cid)
                seen["status"], seen["version"] = case.status, case.version
                transition(s, case, "eliminated", by="dc.two", reason="card fraud victim")

        t = threading.Thread(target=second)
        t.start()
        with store.session() as s:
            case = s.get(Case, cid)
            first_holds.set()
            time.sleep(0.5)  # the second session is waiting meanwhile, not reading version 1
            transition(s, case, "triaged", by="sup", reason="confirmed", band="P1")
        t.join(30)
        assert seen == {"status": "triaged", "version": 2}
        with store.session() as s:
            steps = s.scalars(select(Transition.to_status).where(Transition.case_id == cid)
                              .order_by(Transition.seq)).all()
            assert steps == ["triaged", "eliminated", "eliminated"]  # elimination seals too: its second row
    finally:
        store.dispose()


def test_a_busy_store_is_a_503_on_the_web_and_one_error_line_on_the_command_line(tmp_path: Path) -> None:
    """Past ORE_BUSY_TIMEOUT the web answers 503 "busy, try again" and a command prints one error line."""
    from fastapi.testclient import TestClient

    from ore.config import get_settings
    from ore.web.app import create_app
    from ore.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws", get_settings(busy_timeout=0.3))
    store = store_for(ws)
    make_user(store, "sup", "supervisor")
    who = sign_in(store, "sup", PASSWORD).principal
    with store.session(who) as s:
        _, token = create_token(s, who, "t", ["cases.read"], days=1)
    store.dispose()
    client = TestClient(create_app(ws))
    holder = open_store(ws.database_url)
    try:
        with holder.session() as s:
            s.execute(text("SELECT 1"))  # another process's transaction, holding the write lock
            r = client.get("/api/v1/persons", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 503, r.text
            assert "the case store is busy" in r.json()["detail"] and "Try again" in r.json()["detail"]
            assert int(r.headers["Retry-After"]) > 0
            p = _cli(ws.root, token, "cases", "list", ORE_BUSY_TIMEOUT="0.5")
            assert p.returncode == 2, p.stdout + p.stderr
            assert "error:" in p.stderr and "the case store is busy" in p.stderr, p.stderr
            assert "Traceback" not in p.stderr and "OperationalError" not in p.stderr
        r = client.get("/api/v1/persons", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text  # the lock released, the same request goes through
    finally:
        holder.dispose()
        client.close()
