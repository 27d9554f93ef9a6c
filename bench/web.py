"""Person page latency under load: p50/p95 with N concurrent clients on a large case store.

    python bench/web.py --persons 400000 --clients 50 --requests 2000 [--database-url postgresql://...]

Builds a case store of PERSONS persons (one record each, bulk inserts as an import would
leave them) in a scratch workspace, serves it with uvicorn on 127.0.0.1, signs CLIENTS
browser sessions in, and has them fetch random person pages (each one a scoped case query
and an audit entry, as in use) until REQUESTS are done. Prints one JSON line. Traffic goes
to the loopback address only; the run is bounded by REQUESTS and --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("ORE_ARGON2_TIME_COST", "1")
os.environ.setdefault("ORE_ARGON2_MEMORY_KIB", "8")
os.environ.setdefault("ORE_ARGON2_PARALLELISM", "1")
PASSWORD = "correct horse battery"


def build(ws_root: Path, persons: int, database_url: str | None) -> tuple[object, object]:
    from sqlalchemy import insert, select, text

    from ore.auth import SYSTEM
    from ore.auth.users import add_user
    from ore.config import get_settings
    from ore.store import store_for
    from ore.store.models import Base, Case, Operation, Package, Person, Record
    from ore.workspace import Workspace

    ws = Workspace.open(ws_root, get_settings(database_url=database_url))
    store = store_for(ws)
    if store.dialect == "postgresql":  # a scratch database: start empty
        with store.engine.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in Base.metadata.sorted_tables) + " CASCADE"))
    now = datetime.now(UTC)
    with store.session() as s:
        add_user(s, SYSTEM, "bench.analyst", PASSWORD, "analyst", must_change=False)
        op = Operation(name="Bench")
        s.add(op)
        s.flush()
        pkg = Package(package_ref="BENCH-1", operation_id=op.id)
        s.add(pkg)
        s.flush()
        op_id, pkg_id = op.id, pkg.id
    step = 20_000
    for start in range(0, persons, step):
        n = min(step, persons - start)
        with store.session() as s:
            s.execute(insert(Person), [{"package_id": pkg_id, "person_ref": f"PER{start + i:07d}", "kind": "identified",
                                        "display_name": f"Person {start + i}", "force_code": "MPS",
                                        "evidence_grade": "A", "likely_victim": False, "record_count": 1,
                                        "postcode": "SW1A 1AA"} for i in range(n)])
            ids = s.scalars(select(Person.id).where(Person.package_id == pkg_id, Person.person_ref.in_(
                [f"PER{start + i:07d}" for i in range(n)]))).all()
            s.execute(insert(Case), [{"operation_id": op_id, "person_id": pid, "status": "identified",
                                      "s38_category": "suspect", "recommended_band": random.choice(["P1", "P2", "P3"]),
                                      "band_confirmed": False, "sealed": False, "event_count": 0, "opened_at": now,
                                      "updated_at": now, "version": 1} for pid in ids])
            s.execute(insert(Record), [{"package_id": pkg_id, "record_ref": f"R{pid:08d}", "person_id": pid,
                                        "transaction_time": now, "card_masked": "400000******1234",
                                        "card_last4": "1234", "card_token": f"{pid:064x}", "indicators": "[]",
                                        "fraud_suspected": False} for pid in ids])
    return ws, store


async def load(base: str, persons: int, clients: int, requests: int, max_seconds: float,
               think: float = 0.0) -> list[float]:
    import httpx

    async def session() -> httpx.AsyncClient:
        # The cookies are Secure and this is plain HTTP on loopback: httpx's jar would not send them,
        # so the bench carries them itself (a browser treats localhost as a secure context).
        c = httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=60)
        page = await c.get("/login")
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
        pre = page.headers["set-cookie"].split(";")[0]
        c.cookies.clear()
        r = await c.post("/login", data={"username": "bench.analyst", "password": PASSWORD, "csrf_token": token},
                         headers={"Cookie": pre})
        assert r.status_code == 303, r.text
        c.cookies.clear()
        c.headers["Cookie"] = [h for h in r.headers.get_list("set-cookie") if h.startswith("__Host-ore_session")][0]\
            .split(";")[0]
        return c

    sessions = []
    for i in range(clients):  # sign-ins one by one: the login rate limit is per address
        sessions.append(await session())
    times: list[float] = []
    left = [requests]
    stop = time.monotonic() + max_seconds

    async def worker(c: httpx.AsyncClient) -> None:
        while left[0] > 0 and time.monotonic() < stop:
            left[0] -= 1
            if think:  # a person reads the page before the next: exponential pauses of mean `think`
                await asyncio.sleep(random.expovariate(1.0 / think))
            ref = f"PER{random.randrange(persons):07d}"
            t = time.perf_counter()
            r = await c.get(f"/persons/{ref}")
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, (r.status_code, r.text[:300])

    await asyncio.gather(*(worker(c) for c in sessions))
    for c in sessions:
        await c.aclose()
    return times


def _serve(ws_root: str, database_url: str | None, port: int, clients: int) -> None:
    import uvicorn

    from ore.config import get_settings
    from ore.web import create_app
    from ore.workspace import Workspace

    ws = Workspace.open(Path(ws_root), get_settings(database_url=database_url))
    app = create_app(ws, login_limit=clients * 2, threads=max(40, clients))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _wait_for(port: int, server: multiprocessing.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise SystemExit("the server process ended before it answered")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the server did not answer within 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=400_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (a scratch database: it is emptied)")
    ap.add_argument("--think", type=float, default=0.0,
                    help="Mean seconds a client pauses between pages (0: back to back, a closed loop)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    root = Path(tempfile.mkdtemp(prefix="ore-bench-web-"))
    try:
        t0 = time.perf_counter()
        ws, store = build(root / "ws", args.persons, args.database_url)
        built = time.perf_counter() - t0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # the server in a process of its own, as `ore serve` runs: clients and server must not share a GIL
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(str(root / "ws"), args.database_url, port, args.clients), daemon=True)
        server.start()
        _wait_for(port, server)
        t1 = time.perf_counter()
        times = asyncio.run(load(f"http://127.0.0.1:{port}", args.persons, args.clients, args.requests,
                                 args.max_seconds, args.think))
        wall = time.perf_counter() - t1
        server.terminate()
        server.join(10)
        q = statistics.quantiles(times, n=100)
        print(json.dumps({"backend": store.dialect, "persons": args.persons, "clients": args.clients,
                          "requests": len(times), "build_s": round(built, 1), "wall_s": round(wall, 1),
                          "think_s": args.think, "per_s": round(len(times) / wall, 1), "p50_ms": round(q[49] * 1000, 1),
                          "p95_ms": round(q[94] * 1000, 1), "max_ms": round(max(times) * 1000, 1)}))
        store.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
