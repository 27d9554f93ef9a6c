"""Shared by the store and case tests: a case store on SQLite or PostgreSQL, and small operations.

PostgreSQL: the server at 127.0.0.1:5432 (trust auth, user postgres); each test
session (each xdist worker) creates its own database and drops it at the end. If the
server cannot be reached, the PostgreSQL tests skip and say why.
"""

from __future__ import annotations

import csv
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, text

from ore.auth import SYSTEM, Principal, principal_for
from ore.auth.users import add_user
from ore.pipeline import triage
from ore.store import Store, open_store
from ore.store.models import Base, Case, Operation, Package, Person
from ore.synth import generate
from ore.workspace import Workspace

PG_ADMIN_URL = os.environ.get("ORE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
T0 = datetime(2003, 5, 1, 9, 0, tzinfo=UTC)


def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server means: skip, and say why
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({type(e).__name__}): PostgreSQL case tests skipped")
    name = f"ore_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def clear(store: Store) -> None:
    """Empty every case-store table (the schema stays); DELETE is quicker than TRUNCATE on tiny tables."""
    with store.engine.begin() as conn:
        for t in reversed(Base.metadata.sorted_tables):
            conn.execute(t.delete())


class Stores:
    """One migrated store per backend for the whole test session, emptied before each test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.open: dict[str, Store] = {}

    def get(self, backend: str, pg_url: str | None) -> Store:
        if backend not in self.open:
            url = f"sqlite:///{self.tmp / 'cases.sqlite'}" if backend == "sqlite" else pg_url
            assert url is not None
            self.open[backend] = open_store(url)
        store = self.open[backend]
        clear(store)
        return store

    def close(self) -> None:
        for store in self.open.values():
            store.dispose()


PASSWORD = "correct horse battery"  # passes the password rules; every test user has it


def as_user(role: str, force: str | None = "MPS", name: str | None = None) -> Principal:
    """A principal holding one role (own-force roles in ``force``), without a user row."""
    return principal_for(name or f"{role}.{force or 'nat'}".lower(), [role], force)


def make_user(store: Store, name: str, roles: str, force: str | None = None, *, password: str = PASSWORD) -> None:
    """A user who need not change their password, added as an internal caller would."""
    with store.session() as s:
        add_user(s, SYSTEM, name, password, roles, force, must_change=False)


def add_people(store: Store, n: int, *, grade: str = "A", band: str = "P1", force: str | None = "MPS",
               kind: str = "identified", package: str = "PKG-1", operation: str = "Operation Test",
               start: int = 0) -> list[int]:
    """Insert ``n`` persons with open cases (as an import would), in bulk; return the case ids."""
    with store.session() as s:
        op = s.scalar(select(Operation).where(Operation.name == operation))
        if op is None:
            op = Operation(name=operation)
            s.add(op)
            s.flush()
        pkg = s.scalar(select(Package).where(Package.package_ref == package))
        if pkg is None:
            pkg = Package(package_ref=package, operation_id=op.id)
            s.add(pkg)
            s.flush()
        people = [{"package_id": pkg.id, "person_ref": f"PER{start + i:06d}", "kind": kind,
                   "display_name": f"Person {start + i}", "force_code": force, "evidence_grade": grade,
                   "likely_victim": False, "record_count": 1} for i in range(n)]
        s.execute(insert(Person), people)
        ids = s.scalars(select(Person.id).where(Person.package_id == pkg.id,
                                                Person.person_ref.in_([p["person_ref"] for p in people]))).all()
        now = T0 - timedelta(days=1)
        s.execute(insert(Case), [{"operation_id": op.id, "person_id": pid, "status": "identified",
                                  "s38_category": "suspect", "recommended_band": band, "band_confirmed": False,
                                  "sealed": False, "event_count": 0, "opened_at": now, "updated_at": now,
                                  "version": 1} for pid in ids])
        return list(s.scalars(select(Case.id).where(Case.person_id.in_(ids)).order_by(Case.id)))


@dataclass
class Triaged:
    """A generated scenario triaged into a workspace, for tests that start from a real triage."""

    scenario: Path
    ws: Workspace
    out: Path


def triage_scenario(root: Path, *, people: int, subscribers: int, seed: int) -> Triaged:
    generate(root / "scenario", people=people, subscribers=subscribers, seed=seed)
    ws = Workspace.open(root / "ws")
    triage(ws, root / "scenario" / "package", root / "out", reference=root / "scenario" / "reference")
    return Triaged(root / "scenario", ws, root / "out")


def card_numbers(scenario: Path) -> set[str]:
    """Every clear card number the scenario holds: the leads' and the card alerts' (reference holdings)."""
    found = set()
    for path in (scenario / "package" / "leads.csv", scenario / "reference" / "card_alerts.csv"):
        with path.open(newline="", encoding="utf-8") as f:
            found |= {d for row in csv.DictReader(f) if len(d := re.sub(r"\D", "", row["card_number"] or "")) >= 12}
    return found
