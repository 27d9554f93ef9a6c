"""Eight processes on one PostgreSQL case store at once: no deadlock, no lost update, no duplicate.

Each process has its own workspace (its own DuckDB file, as DuckDB allows one process
per file) and shares the case store through ``ORE_DATABASE_URL``, as units sharing one
operation's PostgreSQL would. Started together (``spawn``):

- four importers triage a package and commit it (``ore triage --commit``: the pipeline,
  then ``import_triage``), two of them package A and two package B, both packages of the
  same operation, into an empty store: the first imports race to create the operation,
  the package, its persons and cases, and the audit chain's head;
- four investigators wait for package A's cases, then move a few "hot" cases along their
  lifecycle and record safeguarding, all on the same cases, pausing between reading a
  case and writing it so that they overtake each other.

Every process must finish within the timeout (the deadlock detector), and every update
is reconciled: each one either committed (the worker counts it only after the commit)
or was refused with the conflict message a user sees. The store then holds exactly the
committed updates (case versions, transition histories, safeguarding rows, audit
entries), one operation, one row per package, person and case, and a valid audit chain.

``ORE_SLOW_TESTS=1`` runs a larger version (more steps, more cases, a bigger package).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import time
import traceback
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

SLOW = os.environ.get("ORE_SLOW_TESTS") == "1"
PEOPLE = 3000 if SLOW else 600
STEPS_PER_INVESTIGATOR = 120 if SLOW else 30
HOT_CASES = 10 if SLOW else 4
TIMEOUT = 900 if SLOW else 240  # seconds for the whole run: a process still waiting then is deadlocked
SEEDS = {"A": 43, "B": 47}
# The path each hot case is moved along; every investigator takes the next step from where the case stands.
PATH = ("triaged", "disseminated", "accepted", "under_investigation", "interviewed", "released", "charged",
        "convicted")
CONFLICT_WORDS = "nothing of yours was saved"


# --- the worker processes (top level, so that spawn can find them) ----------------------------


def _store(url: str) -> Any:
    from ore.store import open_store

    return open_store(url)


def importer(name: str, root: str, package: str, reference: str, url: str, result: str, start: Any) -> None:
    """Triage ``package`` in this process's own workspace and commit it to the shared store.

    The importers commit together (``start``, a barrier): the triages take unequal times,
    and imports one after another would race nothing.
    """
    os.environ["ORE_DATABASE_URL"] = url
    out: dict[str, Any] = {"name": name, "errors": []}
    try:
        from ore.cases import import_triage
        from ore.pipeline import triage
        from ore.workspace import Workspace

        ws = Workspace.open(root)
        summary = triage(ws, Path(package), Path(root) / "out", reference=Path(reference))
        start.wait(TIMEOUT / 2)
        store = _store(url)
        done = import_triage(store, ws, Path(root) / "out", actor=name)
        out.update(package_id=summary.package_id, status=done.status)
    except BaseException as e:  # noqa: BLE001 - reported to the test, which fails on it
        out["errors"].append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    Path(result).write_text(json.dumps(out), encoding="utf-8")


def _hot_cases(store: Any, package_id: str, n: int) -> list[str]:
    """The first ``n`` persons of the package that dissemination can take (a force; grade A or B; no victim)."""
    from sqlalchemy import select

    from ore.store.models import Case, Package, Person

    with store.session() as s:
        return list(s.scalars(
            select(Person.person_ref).join(Case, Case.person_id == Person.id).join(Package)
            .where(Package.package_ref == package_id, Person.force_code.is_not(None),
                   Person.evidence_grade.in_(["A", "B"]), Person.likely_victim.is_(False))
            .order_by(Person.person_ref).limit(n)))


def investigator(name: str, url: str, package_id: str, steps: int, seed: int, result: str) -> None:
    """Take ``steps`` updates on the package's hot cases, each in its own unit of work; count what became of each."""
    os.environ["ORE_DATABASE_URL"] = url
    out: dict[str, Any] = {"name": name, "hot": [], "applied": [], "conflicts": 0, "refused": 0, "errors": []}
    try:
        from ore.cases import find_case, transition
        from ore.cases.lifecycle import TransitionRefused
        from ore.cases.safeguarding import record_safeguarding
        from ore.store import CaseConflict

        store = _store(url)
        rng = random.Random(seed)
        deadline = time.monotonic() + TIMEOUT / 2
        while len(hot := _hot_cases(store, package_id, HOT_CASES)) < HOT_CASES:  # the importers are at work
            assert time.monotonic() < deadline, f"package {package_id} was not imported in time"
            time.sleep(0.2)
        out["hot"] = hot
        for i in range(steps):
            ref = rng.choice(hot)
            applied = None
            try:
                with store.session() as s:
                    case = find_case(s, ref, package_id)
                    time.sleep(rng.uniform(0.0, 0.03))  # another investigator may write the case meanwhile
                    if rng.random() < 0.3:
                        record_safeguarding(s, case, identified=1, safeguarded=1, agency="LA", by=name,
                                            note=f"{name} step {i}")
                        applied = {"ref": ref, "kind": "safeguarding", "note": f"{name} step {i}"}
                    else:
                        at = PATH.index(case.status) + 1 if case.status in PATH else 0
                        if at >= len(PATH):
                            out["refused"] += 1
                            continue
                        to = PATH[at]
                        transition(s, case, to, by=name, reason=f"{name} step {i}", band="P1", force="MPS")
                        applied = {"ref": ref, "kind": "transition", "to": to, "version": case.version}
                out["applied"].append(applied)  # counted only once committed
            except CaseConflict as e:
                assert CONFLICT_WORDS in str(e), e
                out["conflicts"] += 1
            except TransitionRefused:
                out["refused"] += 1
    except BaseException as e:  # noqa: BLE001 - reported to the test, which fails on it
        out["errors"].append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    Path(result).write_text(json.dumps(out), encoding="utf-8")


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ore.synth import generate

    root = tmp_path_factory.mktemp("concurrency-scenarios")
    for label, seed in SEEDS.items():
        generate(root / label, people=PEOPLE, subscribers=80, seed=seed)
    return {label: root / label for label in SEEDS}


@pytest.fixture(scope="module")
def fresh_pg() -> Iterator[str]:
    """An empty database of its own: the processes migrate it on first use, as a new deployment would."""
    from casekit import pg_database

    yield from pg_database()


def test_eight_processes_triage_import_and_update_one_postgres_store(fresh_pg: str, scenarios: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from ore.audit import verify_chain
    from ore.store import open_store
    from ore.store.access import AuditEntry
    from ore.store.models import Case, Operation, Package, Person, Safeguarding, Transition

    pg_url = fresh_pg
    from ore.workspace import Workspace

    package_a = json.loads((scenarios["A"] / "package" / "manifest.json").read_text(encoding="utf-8"))["package_id"]
    ctx = multiprocessing.get_context("spawn")
    # one card key for every workspace, as one operation's units share it: the same package tokenises alike
    keyring = Workspace.open(tmp_path / "keyring")
    keyring.card_key()
    key = keyring.root / "keys"
    procs, results = [], []
    start = ctx.Barrier(4)
    for i, label in enumerate(("A", "B", "A", "B")):
        root = tmp_path / f"importer-{i}"
        shutil.copytree(key, root / "keys")
        results.append(tmp_path / f"importer-{i}.json")
        procs.append(ctx.Process(target=importer, args=(f"importer.{i}", str(root), str(scenarios[label] / "package"),
                                                        str(scenarios[label] / "reference"), pg_url,
                                                        str(results[-1]), start)))
    for i in range(4):
        results.append(tmp_path / f"investigator-{i}.json")
        procs.append(ctx.Process(target=investigator, args=(f"dc.{i}", pg_url, package_a,
                                                            STEPS_PER_INVESTIGATOR, i, str(results[-1]))))
    for p in procs:
        p.start()
    deadline = time.monotonic() + TIMEOUT
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    stuck = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert not stuck, f"processes {stuck} did not finish in {TIMEOUT} s: deadlocked"
    reports = [json.loads(r.read_text(encoding="utf-8")) for r in results]
    errors = [e for r in reports for e in r["errors"]]
    assert not errors, "\n".join(errors)

    importers, investigators = reports[:4], reports[4:]
    assert {r["package_id"] for r in importers} == {package_a, importers[1]["package_id"]}
    # one import per package created it; the other found it whole (same triage, same card key): unchanged
    assert sorted(r["status"] for r in importers) == ["imported", "imported", "unchanged", "unchanged"]
    hot = investigators[0]["hot"]
    assert len(hot) == HOT_CASES and all(r["hot"] == hot for r in investigators)
    applied = [a for r in investigators for a in r["applied"]]
    conflicts = sum(r["conflicts"] for r in investigators)
    assert conflicts > 0, "no two investigators overtook each other: the test raced nothing"
    assert len(applied) + conflicts + sum(r["refused"] for r in investigators) == 4 * STEPS_PER_INVESTIGATOR

    persons = {label: sum(1 for _ in (tmp_path / f"importer-{i}" / "out" / "persons.csv").open()) - 1
               for i, label in enumerate(SEEDS)}
    store = open_store(pg_url)
    try:
        with store.session() as s:
            # no duplicates from the racing imports
            assert s.scalar(select(func.count()).select_from(Operation)) == 1
            assert s.scalar(select(func.count()).select_from(Package)) == 2
            assert s.scalar(select(func.count()).select_from(Person)) == sum(persons.values())
            assert s.scalar(select(func.count()).select_from(Case)) == sum(persons.values())
            # no lost update: each case holds exactly the committed steps, in order, and nothing else
            for ref in hot:
                case = s.scalar(select(Case).join(Person).where(Person.person_ref == ref,
                                                                Case.person.has(Person.package.has(
                                                                    Package.package_ref == package_a))))
                mine = [a for a in applied if a["ref"] == ref and a["kind"] == "transition"]
                steps = s.scalars(select(Transition).where(Transition.case_id == case.id)
                                  .order_by(Transition.seq)).all()
                assert [t.to_status for t in steps] == list(PATH[:len(mine)])
                assert sorted(a["to"] for a in mine) == sorted(t.to_status for t in steps)
                assert [t.seq for t in steps] == list(range(1, len(steps) + 1))
                assert case.version == 1 + len(mine) and case.event_count == len(mine)
                assert sorted(a["version"] for a in mine) == list(range(2, 2 + len(mine)))
                notes = s.scalars(select(Safeguarding.note).where(Safeguarding.case_id == case.id)).all()
                assert sorted(notes) == sorted(a["note"] for a in applied
                                               if a["ref"] == ref and a["kind"] == "safeguarding")
            # the audit log holds one entry per committed update and per first import, in one valid chain
            actions = Counter(s.scalars(select(AuditEntry.action)))
            kinds = Counter(a["kind"] for a in applied)
            assert actions["cases.transition"] == kinds["transition"]
            assert actions["cases.safeguard"] == kinds["safeguarding"]
            assert actions["cases.import"] == 2 * 2  # collection and combination, per first import
            check = verify_chain(s)
            assert check.ok, check
            assert check.entries == sum(actions.values())
    finally:
        store.dispose()


# --- the pieces, each raced on its own (threads: each session holds its own connection) ------------


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Any]:
    from casekit import clear

    from ore.store import open_store

    store = open_store(pg_url)
    clear(store)  # the audit head too: the chain starts from nothing
    yield store
    store.dispose()


def _together(n: int, work: Any) -> list[BaseException]:
    """Run ``work(i)`` in ``n`` threads released at once; return what they raised."""
    start, errors = threading.Barrier(n), []

    def run(i: int) -> None:
        try:
            start.wait(30)
            work(i)
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a writer is still waiting: deadlocked"
    return errors


def test_first_audit_entries_from_eight_writers_form_one_chain(pg_store: Any) -> None:
    """The chain's head row does not exist before the first entry: eight first appenders must not fork or fail."""
    from sqlalchemy import func, select

    from ore.audit import record, verify_chain
    from ore.store.access import AuditEntry

    def append(i: int) -> None:
        for j in range(5):
            with pg_store.session() as s:
                record(s, user=f"u{i}", action="test.append", category="access", purpose="audit",
                       detail={"n": j})

    assert _together(8, append) == []
    with pg_store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 40
        check = verify_chain(s)
        assert check.ok and check.entries == 40, check


def test_bulk_steps_over_the_same_cases_in_opposite_orders_conflict_and_never_deadlock(pg_store: Any) -> None:
    """Two supervisors confirming the same 300 bands, listed in opposite orders: one commits, the other is told.

    Rows are locked in id order whatever order the steps came in; in the callers' orders,
    each would hold half the rows the other waits for, and PostgreSQL would break the
    deadlock by aborting one.
    """
    from casekit import add_people
    from sqlalchemy import select

    from ore.cases.lifecycle import Request, transition_many
    from ore.store import CaseConflict
    from ore.store.models import Case

    ids = add_people(pg_store, 300)
    outcomes: list[str] = []

    def confirm(i: int) -> None:
        with pg_store.session() as s:
            cases = list(s.scalars(select(Case).where(Case.id.in_(ids))))
            cases.sort(key=lambda c: c.id, reverse=bool(i))
            try:
                transition_many(s, [(c, Request(to="triaged", by=f"sup.{i}", reason="confirmed", band="P1"))
                                    for c in cases])
                s.flush()
            except BaseException:
                outcomes.append("raised")
                raise
        outcomes.append("committed")

    errors = _together(2, confirm)
    assert [type(e) for e in errors] == [CaseConflict], errors  # not StoreBusy: no deadlock was broken
    assert sorted(outcomes) == ["committed", "raised"]
    with pg_store.session() as s:
        assert {c.version for c in s.scalars(select(Case).where(Case.id.in_(ids)))} == {2}


def test_a_deadlock_reaches_the_user_as_a_clear_busy_message(pg_store: Any) -> None:
    """Whatever deadlock PostgreSQL breaks, the aborted side reads "busy, try again", and nothing of it is kept."""
    from casekit import add_people
    from sqlalchemy import select, update

    from ore.store import StoreBusy
    from ore.store.models import Case

    a, b = add_people(pg_store, 2)
    both_hold = threading.Barrier(2)

    def cross(i: int) -> None:
        first, second = (a, b) if i == 0 else (b, a)
        with pg_store.session() as s:
            s.execute(update(Case).where(Case.id == first).values(event_count=Case.event_count + 1))
            both_hold.wait(10)
            s.execute(update(Case).where(Case.id == second).values(event_count=Case.event_count + 1))

    errors = _together(2, cross)
    assert len(errors) == 1 and isinstance(errors[0], StoreBusy), errors
    assert "nothing of yours was saved" in str(errors[0]) and "Try again" in str(errors[0])
    with pg_store.session() as s:
        assert sorted(s.scalars(select(Case.event_count).where(Case.id.in_([a, b])))) == [1, 1]


def test_an_erasure_during_a_reimport_stays_erased(pg_url: str, tmp_path: Path) -> None:
    """An import that read the persons before an erasure committed must not insert the erased records again.

    The re-import is held (by a listener on the engine) just before it reads the package's
    records; the erasure runs meanwhile. It must wait for the import (both take the persons
    lock) and erase after it; interleaved, the import would find the records missing and
    insert them again for a person whose data was erased.
    """
    from datetime import UTC, datetime

    from casekit import clear, triage_scenario
    from sqlalchemy import event, func, select

    from ore.cases import import_triage
    from ore.cases.retention import purge
    from ore.store import open_store
    from ore.store.models import Case, Person, Record

    t = triage_scenario(tmp_path, people=600, subscribers=40, seed=43)
    store = open_store(pg_url)
    clear(store)
    try:
        import_triage(store, t.ws, t.out)
        with store.session() as s:
            person_id, case_id = s.execute(
                select(Person.id, Case.id).join(Case, Case.person_id == Person.id)
                .where(Person.kind == "identified",
                       select(Record.id).where(Record.person_id == Person.id).exists())
                .order_by(Person.person_ref).limit(1)).one()
        held, release = threading.Event(), threading.Event()
        importing: list[threading.Thread] = []

        def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if threading.current_thread() in importing and statement.lstrip().startswith("SELECT records."):
                held.set()
                release.wait(60)

        event.listen(store.engine, "before_cursor_execute", hold)
        results: dict[str, Any] = {}

        def reimport() -> None:
            results["import"] = import_triage(store, t.ws, t.out).status

        def erase() -> None:
            with store.session() as s:
                purge(s, s.get(Case, case_id), reason="retention period over", now=datetime(2100, 1, 1, tzinfo=UTC))
            results["erased_at"] = time.monotonic()

        importing.append(threading.Thread(target=reimport))
        importing[0].start()
        assert held.wait(120), "the re-import never read the records"
        eraser = threading.Thread(target=erase)
        eraser.start()
        eraser.join(3)  # time enough to erase, were it not waiting for the import
        waited = eraser.is_alive()
        released_at = time.monotonic()
        release.set()
        importing[0].join(120)
        eraser.join(120)
        event.remove(store.engine, "before_cursor_execute", hold)
        with store.session() as s:
            assert s.get(Person, person_id).erased_at is not None
            assert s.scalar(select(func.count()).select_from(Record).where(Record.person_id == person_id)) == 0
        assert waited, "the erasure did not wait for the import running"
        assert results["import"] == "unchanged" and results["erased_at"] > released_at
    finally:
        store.dispose()
