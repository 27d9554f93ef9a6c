"""Dissemination: only a force's confirmed, unsealed persons go out, each step recorded; the signed zip
verifies, and fails naming the problem when a byte, the manifest, the key or a member is wrong."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from casekit import PASSWORD, make_user, T0, Triaged, card_numbers, triage_scenario
from sqlalchemy import select, update
from typer.testing import CliRunner

from ore.cases import find_case, import_triage, seal, transition
from ore.cases.disseminate import DisseminationRefused, disseminate
from ore.cli import app
from ore.report.package_sign import MANIFEST, load_public_key, verify_package
from ore.store.models import Case, Person, Record, Transition
from ore.workspace import Workspace


@pytest.fixture(scope="module")
def triaged(tmp_path_factory: pytest.TempPathFactory) -> Triaged:
    return triage_scenario(tmp_path_factory.mktemp("dissem"), people=1500, subscribers=120, seed=31)


@dataclass
class Setup:
    force: str
    confirmed: list[str]
    unconfirmed: str
    sealed: str


def prepare(store, t: Triaged) -> Setup:
    """Import; in the force with most actionable persons confirm some, leave one unconfirmed, seal one."""
    import_triage(store, t.ws, t.out, actor="analyst")
    with store.session() as s:
        rows = s.execute(select(Person.force_code, Person.person_ref).join(Case, Case.person_id == Person.id)
                         .where(Person.force_code.is_not(None), Case.recommended_band.in_(["P1", "P2", "P3", "P4"]))
                         .order_by(Person.person_ref)).all()
        by_force: dict[str, list[str]] = {}
        for force, ref in rows:
            by_force.setdefault(force, []).append(ref)
        force, refs = max(by_force.items(), key=lambda kv: (len(kv[1]), kv[0]))
        assert len(refs) >= 5, by_force
        confirmed, unconfirmed, sealed_ref = refs[:3], refs[3], refs[4]
        for ref in [*confirmed, sealed_ref]:
            case = find_case(s, ref)
            transition(s, case, "triaged", by="sgt.smith", reason="band checked", band=case.recommended_band, at=T0)
        seal(s, find_case(s, sealed_ref), by="sgt.smith", reason="wrongly identified", at=T0)
        # other persons of the force stay unconfirmed: they must not go out
    return Setup(force, confirmed, unconfirmed, sealed_ref)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def rezip(src: Path, dest: Path, replace: dict[str, bytes | None]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = replace.get(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
        for name, data in replace.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)
    return dest


def test_dissemination_sends_only_confirmed_unsealed_persons_and_records_the_step(store, triaged, tmp_path) -> None:
    st = prepare(store, triaged)
    with store.session() as s:  # a formula in the sender's data must reach the force as text
        s.execute(update(Person).where(Person.person_ref == st.confirmed[0]).values(display_name="=HYPERLINK(\"x\")"))
        s.execute(update(Record).where(Record.person_id == select(Person.id).where(
            Person.person_ref == st.confirmed[0]).scalar_subquery()).values(merchant="@SUM(A1)"))
    at = T0 + timedelta(hours=2)
    result = disseminate(store, triaged.ws, st.force, by="sgt.smith", out=tmp_path / "out", at=at)
    assert sorted(result.persons) == sorted(st.confirmed)
    held = {ref: rule for ref, rule, _ in result.held}
    assert held[st.unconfirmed] == "band_confirmed" and st.sealed not in held
    assert result.sealed_skipped == 1
    with store.session() as s:
        for ref in st.confirmed:
            case = find_case(s, ref)
            assert case.status == "disseminated" and case.force_code == st.force and case.disseminated_at == at
            last = s.scalars(select(Transition).where(Transition.case_id == case.id).order_by(Transition.seq.desc())).first()
            assert (last.to_status, last.actor, last.force_code, last.at) == ("disseminated", "sgt.smith", st.force, at)
        assert find_case(s, st.unconfirmed).status == "identified"
        assert find_case(s, st.sealed).status == "triaged"
        tokens = {t for t in s.scalars(select(Record.card_token)) if t}
        masked = {m for m in s.scalars(select(Record.card_masked).join(Person, Person.id == Record.person_id)
                                       .where(Person.person_ref.in_(st.confirmed))) if m}

    files = members(result.path)
    assert set(files) == {"persons.csv", "reasons.csv", "records.csv", "indicators.csv", "holdings.csv",
                          "manifest.json", "manifest.sig"}
    persons = csv_rows(files["persons.csv"])
    assert sorted(p["person_ref"] for p in persons) == sorted(st.confirmed)
    assert {p["force_code"] for p in persons} == {st.force}
    formula = next(p for p in persons if p["person_ref"] == st.confirmed[0])
    assert formula["name"] == "'=HYPERLINK(\"x\")"
    records = csv_rows(files["records.csv"])
    assert records and {r["person_ref"] for r in records} <= set(st.confirmed)
    assert "card_token" not in records[0] and {r["card_masked"] for r in records} <= masked
    assert any(r["merchant"] == "'@SUM(A1)" for r in records)
    assert {r["person_ref"] for r in csv_rows(files["reasons.csv"])} == set(st.confirmed)
    manifest = json.loads(files[MANIFEST])
    assert manifest["force"] == st.force and manifest["persons"] == 3 and manifest["ore_version"]
    assert {f["name"]: f["rows"] for f in manifest["files"]}["persons.csv"] == 3

    # no clear card number and no token anywhere, compressed or not
    blobs = [result.path.read_bytes(), *files.values()]
    numbers = card_numbers(triaged.scenario)
    assert numbers and tokens
    for blob in blobs:
        text = blob.decode("latin-1")
        assert not [n for n in numbers if n in text]
        assert not [t for t in tokens if t in text]

    # the same persons again: nothing waits any more, and the refusal says why
    with pytest.raises(DisseminationRefused, match="nothing to disseminate"):
        disseminate(store, triaged.ws, st.force, by="sgt.smith", out=tmp_path / "again", at=at + timedelta(hours=1))


def test_named_unconfirmed_or_sealed_person_refuses_with_the_rule(store, triaged, tmp_path) -> None:
    st = prepare(store, triaged)
    for ref, rule in ((st.unconfirmed, "band_confirmed"), (st.sealed, "sealed")):
        with pytest.raises(DisseminationRefused) as e:
            disseminate(store, triaged.ws, st.force, by="sgt.smith", out=tmp_path / rule,
                        persons=[st.confirmed[0], ref], at=T0 + timedelta(hours=1))
        assert e.value.rule == rule and f"refused by rule {rule}" in str(e.value)
        assert not (tmp_path / rule).exists() or not list((tmp_path / rule).iterdir())
    with store.session() as s:  # nothing moved
        assert find_case(s, st.confirmed[0]).status == "triaged"
        assert find_case(s, st.unconfirmed).status == "identified"


def test_verify_passes_and_names_each_failure(triaged, tmp_path, tmp_path_factory) -> None:
    from casekit import Stores

    stores = Stores(tmp_path_factory.mktemp("verify-store"))
    try:
        store = stores.get("sqlite", None)
        st = prepare(store, triaged)
        result = disseminate(store, triaged.ws, st.force, by="sgt.smith", out=tmp_path / "out",
                             at=T0 + timedelta(hours=1))
    finally:
        stores.close()
    key = load_public_key(result.public_key_path)
    good = verify_package(result.path, key)
    assert good.ok, good.problems
    assert any("signature: valid" in c for c in good.checked)

    # a flipped byte inside a member's stored data: the zip's own check or our hash catches it, naming the member
    raw = bytearray(result.path.read_bytes())
    with zipfile.ZipFile(result.path) as z:
        info = z.getinfo("records.csv")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    v = verify_package(flipped, key)
    assert not v.ok and any(p.startswith("records.csv:") for p in v.problems), v.problems

    # a member changed and re-zipped cleanly (the zip's CRC is right): the manifest's sha256 catches it
    files = members(result.path)
    changed = files["persons.csv"].replace(b",P", b",Q", 1)
    assert changed != files["persons.csv"]
    v = verify_package(rezip(result.path, tmp_path / "edited.zip", {"persons.csv": changed}), key)
    assert not v.ok and any(p.startswith("persons.csv: sha256") for p in v.problems), v.problems

    # the manifest edited (a row count raised): the signature fails
    manifest = json.loads(files[MANIFEST])
    manifest["persons"] += 1
    v = verify_package(rezip(result.path, tmp_path / "manifest.zip",
                             {MANIFEST: json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"}), key)
    assert not v.ok and any("manifest was changed" in p for p in v.problems), v.problems

    # another key: refused, saying it is another key
    other = tmp_path / "other.pub"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ore.report.package_sign import public_pem

    other.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    v = verify_package(result.path, load_public_key(other))
    assert not v.ok and any("another key" in p for p in v.problems), v.problems

    # a member missing
    v = verify_package(rezip(result.path, tmp_path / "missing.zip", {"holdings.csv": None}), key)
    assert not v.ok and any(p == "holdings.csv: missing from the zip" for p in v.problems), v.problems

    # a member added after signing
    v = verify_package(rezip(result.path, tmp_path / "added.zip", {"extra.csv": b"a\n1\n"}), key)
    assert not v.ok and any(p.startswith("extra.csv: in the zip but not in the manifest") for p in v.problems)

    # the command: exit 0 on a good package, 1 naming the problem on a bad one
    runner = CliRunner()
    ok = runner.invoke(app, ["package", "verify", str(result.path), "--public-key", str(result.public_key_path)])
    assert ok.exit_code == 0 and "VERIFIED" in ok.output
    bad = runner.invoke(app, ["package", "verify", str(flipped), "--public-key", str(result.public_key_path)])
    assert bad.exit_code == 1 and "records.csv" in bad.output and "NOT verified" in bad.output
    pk = runner.invoke(app, ["-w", str(triaged.ws.root), "package", "public-key"])
    assert pk.exit_code == 0 and result.public_key_path.read_text() in pk.output
    assert (triaged.ws.root / "keys" / "signing-ed25519.pem").stat().st_mode & 0o077 == 0


def test_disseminate_command(triaged, tmp_path) -> None:
    import shutil

    from ore.store import store_for

    ws = Workspace.open(shutil.copytree(triaged.ws.root, tmp_path / "ws"))
    store = store_for(ws)
    try:
        st = prepare(store, Triaged(triaged.scenario, ws, triaged.out))
    finally:
        store.dispose()
    store = store_for(ws)
    make_user(store, "sgt.smith", "supervisor")
    make_user(store, "insp.two", "supervisor")
    store.dispose()
    runner = CliRunner(env={"ORE_USER": "sgt.smith", "ORE_PASSWORD": PASSWORD})
    asked = runner.invoke(app, ["-w", str(ws.root), "approvals", "request", "disseminate_p1", st.force,
                                "--reason", "P1 persons in the package"])
    assert asked.exit_code == 0, asked.output
    granted = runner.invoke(app, ["-w", str(ws.root), "approvals", "grant", "1"], env={"ORE_USER": "insp.two"})
    assert granted.exit_code == 0, granted.output
    base = ["-w", str(ws.root), "disseminate", "--force", st.force, "--out", str(tmp_path / "out"), "--approval", "1"]
    refused = runner.invoke(app, [*base, "--person", st.unconfirmed])
    assert refused.exit_code == 2 and "band_confirmed" in refused.output
    done = runner.invoke(app, base)
    assert done.exit_code == 0, done.output
    # the sealed person is left out, and a supervisor (who does not see sealed persons) is not even told of them
    assert "3 person(s) disseminated" in done.output and "sealed" not in done.output
    (zip_path,) = (tmp_path / "out").glob("*.zip")
    (pub,) = (tmp_path / "out").glob("*.pub")
    assert verify_package(zip_path, load_public_key(pub)).ok


def test_a_single_p1_step_to_disseminated_needs_a_second_persons_approval(store) -> None:
    """As for a package: the step of one P1 person (ore cases transition, the web's step) uses up
    an approval; a P2 person to their own force needs none; another force needs one."""
    from casekit import add_people, as_user

    from ore.auth import approvals
    from ore.cases import find_case
    from ore.cases.disseminate import approve_step

    p1, p2 = add_people(store, 2, force="MPS")
    sup, other = as_user("supervisor", None, "sup.one"), as_user("supervisor", None, "sup.two")
    with store.session() as s:
        refs = []
        for cid, band in ((p1, "P1"), (p2, "P2")):
            case = s.get(Case, cid)
            transition(s, case, "triaged", by="sgt", reason="ok", band=band, at=T0)
            refs.append(case.person.person_ref)
    p1_ref, p2_ref = refs
    with store.session(sup) as s, pytest.raises(approvals.ApprovalNeeded, match="disseminate_p1"):
        approve_step(s, find_case(s, p1_ref), "disseminated", "MPS", None)
    with store.session(sup) as s:
        approve_step(s, find_case(s, p2_ref), "disseminated", "MPS", None)  # P2, own force: no approval
    with store.session(sup) as s, pytest.raises(approvals.ApprovalNeeded, match="cross_force_disclosure"):
        approve_step(s, find_case(s, p2_ref), "disseminated", "GMP", None)
    with store.session(sup) as s:
        aid = approvals.request(s, sup, "disseminate_p1", p1_ref, "child at risk").id
    with store.session(other) as s:
        approvals.grant(s, other, aid)
    with store.session(sup) as s:
        case = find_case(s, p1_ref)
        approve_step(s, case, "disseminated", "MPS", aid)
        transition(s, case, "disseminated", by="sup.one", reason="go", at=T0)
        assert case.status == "disseminated"
