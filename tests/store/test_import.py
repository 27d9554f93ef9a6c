"""Committing a triage: everything lands once, masked; again changes nothing; a re-triage updates with history."""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner
from casekit import PASSWORD, make_user

from ore.assess import assess, load_policy
from ore.cases import TransitionRefused, find_case, import_triage, transition
from ore.cli import app
from ore.errors import OreError
from ore.pipeline import triage
from ore.report import write_outputs
from ore.store.models import Base, Case, Change, HoldingLink, Import, Person, Recommendation, Record
from ore.synth import generate
from ore.workspace import Workspace

T0 = datetime(2003, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class Triaged:
    root: Path
    scenario: Path
    ws: Workspace
    out: Path
    package_id: str


@pytest.fixture(scope="module")
def triaged(tmp_path_factory: pytest.TempPathFactory) -> Triaged:
    root = tmp_path_factory.mktemp("triaged")
    generate(root / "scenario", people=3000, subscribers=200, seed=23)
    ws = Workspace.open(root / "ws")
    summary = triage(ws, root / "scenario" / "package", root / "out", reference=root / "scenario" / "reference")
    return Triaged(root, root / "scenario", ws, root / "out", summary.package_id)


def copy_workspace(t: Triaged, dest: Path) -> Workspace:
    shutil.copytree(t.ws.root, dest)
    return Workspace.open(dest)


def snapshot(store) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(t.select().order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables}


def duck(t: Triaged, sql: str) -> list[tuple]:
    with t.ws.duckdb(read_only=True) as con:
        return con.execute(sql, [t.package_id]).fetchall()


def test_import_commits_the_run(store, triaged: Triaged) -> None:
    result = import_triage(store, triaged.ws, triaged.out, actor="analyst.one")
    assert result.status == "imported" and result.package_id == triaged.package_id
    persons = {r[0]: r for r in duck(triaged, "SELECT person_id, 'identified' FROM identified_persons WHERE package_id = ? "
                                               "UNION ALL SELECT subject_id, 'unidentified' FROM unidentified_subjects "
                                               "WHERE package_id = $1")}
    priority = {r[0]: r[1:] for r in duck(triaged, "SELECT person_id, priority, reasons, sentences FROM person_priority "
                                                   "WHERE package_id = ?")}
    grades = dict(duck(triaged, "SELECT person_id, evidence_grade FROM person_evidence WHERE package_id = ?"))
    n_records = duck(triaged, "SELECT count(*) FROM leads WHERE package_id = ?")[0][0]
    n_links = duck(triaged, "SELECT count(*) FROM holding_links WHERE package_id = ?")[0][0]
    indicators = {}
    for rid, code in duck(triaged, "SELECT record_id, code FROM record_indicators WHERE package_id = ?"):
        indicators.setdefault(rid, set()).add(code)
    with store.session() as s:
        stored = {p.person_ref: p for p in s.scalars(select(Person))}
        assert {k: p.kind for k, p in stored.items()} == {k: v[1] for k, v in persons.items()}
        assert {ref: p.evidence_grade for ref, p in stored.items() if p.kind == "identified"} == grades
        recs = {s.get(Person, r.person_id).person_ref: r for r in s.scalars(select(Recommendation))}
        assert len(recs) == len(persons)
        for ref, (band, reasons, sentences) in priority.items():
            assert (recs[ref].band, recs[ref].reasons) == (band, reasons)
            assert json.loads(recs[ref].sentences) == json.loads(sentences)
        cases = list(s.scalars(select(Case)))
        assert len(cases) == len(persons)
        assert {(c.status, c.s38_category, c.version) for c in cases} == {("identified", "suspect", 1)}
        assert s.scalar(select(func.count()).select_from(Record)) == n_records
        assert s.scalar(select(func.count()).select_from(HoldingLink)) == n_links
        for r in s.scalars(select(Record).where(Record.record_ref.in_(list(indicators)[:50]))):
            assert {i["code"] for i in json.loads(r.indicators)} == indicators[r.record_ref]
        imp = s.scalars(select(Import)).one()
        assert (imp.actor, imp.outdir, len(imp.fingerprint)) == ("analyst.one", str(triaged.out), 64)


def test_no_clear_card_number_reaches_the_store(store, triaged: Triaged) -> None:
    import_triage(store, triaged.ws, triaged.out)
    with (triaged.scenario / "package" / "leads.csv").open(newline="", encoding="utf-8") as f:
        numbers = {"".join(ch for ch in row["card_number"] if ch.isdigit()) for row in csv.DictReader(f)}
    numbers = {n for n in numbers if len(n) >= 12}
    assert len(numbers) > 100
    text = json.dumps(snapshot(store), default=str)
    assert not [n for n in numbers if n in text], "a clear card number is in the case store"
    with store.session() as s:
        masked = s.scalars(select(Record.card_masked).where(Record.card_masked.is_not(None))).all()
    assert masked and all("*" in m and m[-4:].isdigit() for m in masked)


def test_importing_the_same_run_again_changes_nothing(store, triaged: Triaged) -> None:
    import_triage(store, triaged.ws, triaged.out)
    before = snapshot(store)
    again = import_triage(store, triaged.ws, triaged.out)
    assert again.status == "unchanged" and again.as_dict()["counts"] == {}
    assert snapshot(store) == before


def reassess(t: Triaged, ws: Workspace, out: Path, tmp: Path) -> Path:
    """Re-run assess for the package with a policy that raises repeat purchases to P2 (a re-triage)."""
    policy = yaml.safe_load((Path(__import__("ore.assess", fromlist=["x"]).__file__).parent / "policy.yaml").read_text())
    policy["factors"]["repeat_purchases"]["band"] = "P2"
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with ws.duckdb() as con:
        assess(con, t.package_id, path)
        write_outputs(con, t.package_id, out, load_policy(path).min_link_probability)
    return out


def test_a_retriage_updates_with_history_and_never_duplicates(store, triaged: Triaged, tmp_path: Path) -> None:
    ws = copy_workspace(triaged, tmp_path / "ws")
    import_triage(store, ws, triaged.out)
    with store.session() as s:
        p3 = [c for c in s.scalars(select(Case).where(Case.recommended_band == "P3"))]
        assert p3, "the scenario should have P3 persons"
        confirmed = p3[0]
        transition(s, confirmed, "triaged", by="sgt.confirm", reason="repeat buyer: P3 as recommended", band="P3",
                   at=T0)
        confirmed_ref = confirmed.person.person_ref
        counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                  for m in (Person, Case, Record, HoldingLink, Recommendation)}
    out2 = reassess(triaged, ws, tmp_path / "out2", tmp_path)
    result = import_triage(store, ws, out2, actor="analyst.two")
    assert result.status == "updated"
    with store.session() as s:
        for m in (Person, Case, Record, HoldingLink):
            assert s.scalar(select(func.count()).select_from(m)) == counts[m.__tablename__], m.__tablename__
        changed = result.counts["recommendations_added"]
        assert changed > 0
        assert s.scalar(select(func.count()).select_from(Recommendation)) == counts["recommendations"] + changed
        case = find_case(s, confirmed_ref)
        history = s.scalars(select(Recommendation).where(Recommendation.person_id == case.person_id)
                            .order_by(Recommendation.id)).all()
        assert [r.band for r in history] == ["P3", "P2"]  # the old recommendation kept, the new one added
        assert history[0].recorded_at <= history[1].recorded_at
        assert case.recommended_band == "P2" and case.band == "P3" and not case.band_confirmed
        band_changes = s.scalars(select(Change).where(Change.person_id == case.person_id,
                                                      Change.field == "recommendation.band")).all()
        assert [(c.old, c.new) for c in band_changes] == [("P3", "P2")]
    with pytest.raises(TransitionRefused) as e, store.session() as s:
        transition(s, find_case(s, confirmed_ref), "disseminated", by="sgt.confirm", reason="go", at=T0)
    assert e.value.rule == "band_confirmed"
    before = snapshot(store)
    assert import_triage(store, ws, out2).status == "unchanged"
    assert snapshot(store) == before


def test_a_stale_outdir_is_refused(store, triaged: Triaged, tmp_path: Path) -> None:
    ws = copy_workspace(triaged, tmp_path / "ws")
    reassess(triaged, ws, tmp_path / "out2", tmp_path)
    with pytest.raises(OreError, match="not the latest triage"):
        import_triage(store, ws, triaged.out)  # the OUTDIR of the run before the re-assessment
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 0


def test_an_outdir_from_elsewhere_is_refused(store, triaged: Triaged, tmp_path: Path) -> None:
    out = tmp_path / "other"
    out.mkdir()
    (out / "records.csv").write_text("record_id,person_id\nNOPE1,PER1\n")
    (out / "persons.csv").write_text("person_id,priority\nPER1,P1\n")
    with pytest.raises(OreError, match="matches no package"):
        import_triage(store, triaged.ws, out)
    with pytest.raises(OreError, match="not found"):
        import_triage(store, triaged.ws, tmp_path / "missing")


def test_cli_import_list_show_transition_and_funnel(store, triaged: Triaged, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORE_WORKSPACE", str(triaged.ws.root))
    monkeypatch.setenv("ORE_DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    make_user(store, "analyst.cli", "analyst")
    make_user(store, "sgt", "supervisor")
    make_user(store, "insp", "supervisor")  # the second person of the two-person rule
    runner = CliRunner(env={"ORE_USER": "analyst.cli", "ORE_PASSWORD": PASSWORD})
    r = runner.invoke(app, ["cases", "import", str(triaged.out)])
    assert r.exit_code == 0, r.output
    assert "imported" in r.output
    r = runner.invoke(app, ["cases", "import", str(triaged.out)])
    assert r.exit_code == 0 and "nothing changed" in r.output
    with store.session() as s:
        case = s.scalars(select(Case).where(Case.recommended_band == "P1").order_by(Case.id)).first()
        ref, force = case.person.person_ref, case.person.force_code
    r = runner.invoke(app, ["cases", "transition", ref, "triaged", "--reason", "ok", "--band", "P1"])
    assert r.exit_code == 2 and "may not take the step triaged" in r.output  # an analyst does not confirm bands
    make_user(store, "dc", "investigator", force)
    runner = CliRunner(env={"ORE_USER": "sgt", "ORE_PASSWORD": PASSWORD})
    r = runner.invoke(app, ["cases", "transition", ref, "disseminated", "--reason", "go"])
    assert r.exit_code == 2 and "legal_transition" in r.output
    r = runner.invoke(app, ["cases", "transition", ref, "triaged", "--reason", "ok", "--band", "P1",
                            "--at", "2003-05-01T09:00"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["cases", "transition", ref, "disseminated", "--reason", "go",
                            "--at", "2003-05-01T10:00"])
    assert r.exit_code == 2 and "needs a second person's approval" in r.output  # a P1 person
    r = runner.invoke(app, ["approvals", "request", "disseminate_p1", ref, "--reason", "children at the address"])
    aid = re.search(r"Approval (\d+) requested", r.output).group(1)
    r = runner.invoke(app, ["approvals", "grant", aid], env={"ORE_USER": "insp", "ORE_PASSWORD": PASSWORD})
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["cases", "transition", ref, "disseminated", "--reason", "go",
                            "--at", "2003-05-01T10:00", "--approval", aid])
    assert r.exit_code == 0 and "due by 2003-05-02T10:00" in r.output, r.output
    r = runner.invoke(app, ["cases", "overdue", "--at", "2003-05-03T00:00"])
    assert r.exit_code == 0 and ref in r.output
    r = runner.invoke(app, ["cases", "show", ref])
    assert r.exit_code == 0 and "band P1" in r.output and (force or "") in r.output
    r = runner.invoke(app, ["cases", "list", "--status", "disseminated"])
    assert r.exit_code == 0 and ref in r.output
    r = runner.invoke(app, ["cases", "safeguard", ref, "--identified", "2", "--safeguarded", "2", "--agency", "LA"],
                      env={"ORE_USER": "dc", "ORE_PASSWORD": PASSWORD})
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", "funnel", "--by", "band", "--format", "csv"])
    assert r.exit_code == 0
    rows = list(csv.DictReader(r.output.splitlines()))
    total = next(row for row in rows if row["band"] == "all")
    assert (total["disseminated"], total["children_safeguarded"]) == ("1", "2")
    html = tmp_path / "funnel.html"
    r = runner.invoke(app, ["report", "funnel", "--format", "html", "--out", str(html)])
    assert r.exit_code == 0 and "<svg" in html.read_text()
    r = runner.invoke(app, ["report", "funnel", "--by", "colour"])
    assert r.exit_code == 2 and "use one of force, band" in r.output


def test_triage_commit_imports_the_run(store, triaged: Triaged, tmp_path: Path, monkeypatch) -> None:
    ws = copy_workspace(triaged, tmp_path / "ws")
    monkeypatch.setenv("ORE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("ORE_DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    make_user(store, "analyst.one", "analyst")
    r = CliRunner().invoke(app, ["triage", str(triaged.scenario / "package"), "--out", str(tmp_path / "out"),
                                 "--commit"], env={"ORE_USER": "analyst.one", "ORE_PASSWORD": PASSWORD})
    assert r.exit_code == 0, r.output
    assert "Case store:" in r.output and "imported" in r.output
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == sum(
            1 for _ in csv.DictReader((tmp_path / "out" / "persons.csv").open()))


def test_a_person_the_retriage_no_longer_names_is_withdrawn_not_deleted(store, triaged: Triaged, tmp_path) -> None:
    """A re-run that stops attributing records to an unidentified subject: the subject is withdrawn (their
    case and its history stay), and each record's change of subject is in the history."""
    ws = copy_workspace(triaged, tmp_path / "ws")
    import_triage(store, ws, triaged.out)
    with ws.duckdb() as con:
        (subject,) = con.execute("SELECT min(subject_id) FROM unidentified_subjects WHERE package_id = ?",
                                 [triaged.package_id]).fetchall()[0]
        records = [r[0] for r in con.execute("SELECT record_id FROM record_evidence WHERE package_id = ? AND "
                                             "subject_id = ?", [triaged.package_id, subject]).fetchall()]
        con.execute("DELETE FROM unidentified_subjects WHERE package_id = ? AND subject_id = ?",
                    [triaged.package_id, subject])
        con.execute("DELETE FROM person_priority WHERE package_id = ? AND person_id = ?", [triaged.package_id, subject])
        con.execute("UPDATE record_evidence SET subject_id = NULL WHERE package_id = ? AND subject_id = ?",
                    [triaged.package_id, subject])
        write_outputs(con, triaged.package_id, tmp_path / "out2", load_policy().min_link_probability)
    with store.session() as s:
        transition(s, find_case(s, subject), "eliminated", by="dci", reason="not a person: a proxy's traffic",
                   ground="witness", at=T0)
    result = import_triage(store, ws, tmp_path / "out2")
    assert result.counts["persons_withdrawn"] == 1 and result.counts["records_updated"] == len(records) > 0
    with store.session() as s:
        case = find_case(s, subject)
        assert case.person.withdrawn_at is not None and case.status == "eliminated"  # kept, with its history
        moved = s.scalars(select(Change).where(Change.field == "record.subject_ref")).all()
        assert sorted(c.record_ref for c in moved) == sorted(records)
        assert {(c.old, c.new) for c in moved} == {(subject, None)}
        assert s.scalar(select(func.count()).select_from(Record).where(Record.subject_id == case.person_id)) == 0
    assert import_triage(store, ws, tmp_path / "out2").status == "unchanged"
