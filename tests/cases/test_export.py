"""FollowTheMoney export: every line is a valid entity the model reads back; persons, addresses, accounts
and payments are linked; sealed persons and any card number or token stay out."""

from __future__ import annotations

import json
import re

import pytest
from casekit import PASSWORD, make_user, T0, Triaged, card_numbers, triage_scenario
from sqlalchemy import select
from typer.testing import CliRunner

from ore.cases import find_case, import_triage, seal
from ore.cli import app
from ore.report.ftm import export_ftm
from ore.store import store_for
from ore.store.models import Case, Operation, Person, Record
from ore.workspace import Workspace


@pytest.fixture(scope="module")
def triaged(tmp_path_factory: pytest.TempPathFactory) -> Triaged:
    return triage_scenario(tmp_path_factory.mktemp("ftm"), people=1200, subscribers=100, seed=41)


def test_export_is_valid_linked_ftm_without_sealed_persons_or_cards(store, triaged, tmp_path) -> None:
    from followthemoney import model

    import_triage(store, triaged.ws, triaged.out, actor="analyst")
    with store.session() as s:
        operation = s.scalar(select(Operation.name))
        sealed_case = s.scalars(select(Case).join(Person, Person.id == Case.person_id)
                                .where(Person.kind == "identified", Person.record_count > 0)
                                .order_by(Person.person_ref)).first()
        sealed_ref = sealed_case.person.person_ref
        seal(s, find_case(s, sealed_ref), by="sgt.smith", reason="wrongly identified", at=T0)
        sealed_records = set(s.scalars(select(Record.record_ref).where(Record.person_id == sealed_case.person_id)))
        tokens = {t for t in s.scalars(select(Record.card_token)) if t}
        masked = {m for m in s.scalars(select(Record.card_masked)) if m}
        n_persons = s.query(Person).count()
    out = tmp_path / "op.jsonl"
    with store.session() as s:
        result = export_ftm(s, out, operation, triaged.ws)

    lines = out.read_text(encoding="utf-8").splitlines()
    entities = {}
    for line in lines:
        data = json.loads(line)
        proxy = model.get_proxy(data)  # validates the schema and every property name
        assert proxy.to_dict() == data
        assert proxy.schema.name in ("Person", "Address", "UserAccount", "Payment", "Organization")
        entities[proxy.id] = proxy
    by_schema: dict[str, list] = {}
    for e in entities.values():
        by_schema.setdefault(e.schema.name, []).append(e)
    assert {"Person", "Address", "UserAccount", "Payment", "Organization"} <= set(by_schema)
    assert len(by_schema["Person"]) == n_persons - 1 == result.counts["Person"]
    assert sum(result.counts.values()) == len(lines)

    # links resolve to exported entities
    for pay in by_schema["Payment"]:
        assert all(entities[i].schema.name == "Person" for i in pay.get("payer"))
        assert all(entities[i].schema.name == "Organization" for i in pay.get("beneficiary"))
        (desc,) = pay.get("description")
        assert re.search(r"card (\S+) \(masked\)", desc).group(1) in masked | {"unknown"}
    for acc in by_schema["UserAccount"]:
        assert [entities[i].schema.name for i in acc.get("owner")] == ["Person"]
    assert all(entities[i].schema.name == "Address" for p in by_schema["Person"] for i in p.get("addressEntity"))

    # the sealed person: not exported, nor their payments
    assert not [p for p in by_schema["Person"] if f"person {sealed_ref} " in p.first("summary")]
    assert not {r for pay in by_schema["Payment"] for r in pay.get("recordId")} & sealed_records

    text = out.read_text(encoding="utf-8")
    numbers = card_numbers(triaged.scenario)
    assert numbers and tokens
    assert not [n for n in numbers if n in text]
    assert not [t for t in tokens if t in text]


def test_export_command(triaged, tmp_path) -> None:
    import shutil

    ws = Workspace.open(shutil.copytree(triaged.ws.root, tmp_path / "ws"))
    import_triage(store_for(ws), ws, triaged.out, actor="analyst")
    with store_for(ws).session() as s:
        operation = s.scalar(select(Operation.name))
    make_user(store_for(ws), "sgt.smith", "supervisor")
    make_user(store_for(ws), "insp.two", "supervisor")
    out = tmp_path / "export.jsonl"
    runner = CliRunner(env={"ORE_USER": "sgt.smith", "ORE_PASSWORD": PASSWORD})
    r = runner.invoke(app, ["-w", str(ws.root), "export", "ftm", "--operation", operation, "--out", str(out)])
    assert r.exit_code == 2 and "two-person rule" in r.output and not out.exists()
    assert runner.invoke(app, ["-w", str(ws.root), "approvals", "request", "bulk_export", operation,
                               "--reason", "to Aleph"]).exit_code == 0
    assert runner.invoke(app, ["-w", str(ws.root), "approvals", "grant", "1"]).exit_code == 2  # not one's own
    assert runner.invoke(app, ["-w", str(ws.root), "approvals", "grant", "1"],
                         env={"ORE_USER": "insp.two"}).exit_code == 0
    r = runner.invoke(app, ["-w", str(ws.root), "export", "ftm", "--operation", operation, "--out", str(out),
                            "--approval", "1"])
    assert r.exit_code == 0, r.output
    assert "entities written" in r.output and out.stat().st_size > 0
    r = runner.invoke(app, ["-w", str(ws.root), "export", "ftm", "--operation", "nope", "--out", str(out),
                            "--approval", "1"])
    assert r.exit_code == 2 and "approval 1" in r.output  # an approval is for one operation, used once


def test_export_obeys_the_force_scope_of_whoever_asks(store, triaged, tmp_path) -> None:
    """The export reads cases through the one scoping rule: a force's user gets only what was
    disseminated to that force (here nothing yet), a national user every unsealed person."""
    from casekit import as_user

    import_triage(store, triaged.ws, triaged.out, actor="analyst")
    with store.session() as s:
        operation = s.scalar(select(Operation.name))
    with store.session(as_user("supervisor", None)) as s:
        national = export_ftm(s, tmp_path / "all.ftm.json", operation)
    with store.session(as_user("investigator", "MPS")) as s:
        own_force = export_ftm(s, tmp_path / "mps.ftm.json", operation)
    assert national.counts["Person"] > 0
    assert own_force.counts["Person"] == 0
