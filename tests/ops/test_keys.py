"""Card-token key rotation: a rotation between loading holdings and ingesting a package keeps the card
match; re-keying moves every stored token to the new key; an old key is retired only when unused.

The card match is read where it is used: the corroborate stage's card-alert indicator, which joins a
lead's token to the holdings' card alerts by equality.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.leadpkg import card, lead, open_ws, query, settings_env, write_package
from ore.audit import verify_chain
from ore.cli import app
from ore.corroborate import corroborate
from ore.errors import OreError
from ore.ingest import ingest, load_reference
from ore.ops.keys import rekey, retire, rotate, status
from ore.store import store_for
from ore.store.access import AuditEntry
from ore.workspace import Workspace

ALERTED = card(1)  # reported stolen in the holdings
OTHER = card(2)
ONLY_IN_A = card(3)
ONLY_IN_HOLDINGS = card(4)


def reference(directory: Path, *numbers: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["card_number,reported_on,alert_type"] + [f"{n},2001-05-01,stolen" for n in numbers]
    (directory / "card_alerts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def package(directory: Path, package_id: str, *numbers: str) -> Path:
    rows = [lead(i + 1, record_id=f"{package_id}-{i + 1}", card_number=n) for i, n in enumerate(numbers)]
    return write_package(directory, rows, package_id=package_id)


def alert_hits(ws: Workspace, package_id: str) -> set[str]:
    """Records of the package whose card the holdings' alerts name, as the corroborate stage finds them."""
    with ws.duckdb() as con:
        con.execute("CREATE OR REPLACE TABLE resolved_records AS SELECT package_id, record_id, "
                    "'P-' || record_id AS person_id FROM leads")
        corroborate(con, package_id)
        rows = con.execute("SELECT record_id FROM record_indicators WHERE package_id = ? AND code LIKE 'alert_%'",
                           [package_id]).fetchall()
    return {r[0] for r in rows}


def token(ws: Workspace, version: int, number: str) -> str:
    return hmac.new(ws.card_keys()[version], number.encode(), hashlib.sha256).hexdigest()


def audit_actions(ws: Workspace) -> list[str]:
    with store_for(ws).session() as s:
        assert verify_chain(s).ok
        return [e.action for e in s.query(AuditEntry).order_by(AuditEntry.seq)]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_ws(tmp_path / "ws")


def test_a_rotation_between_holdings_and_a_package_keeps_the_card_match(ws: Workspace, tmp_path: Path) -> None:
    load_reference(ws, reference(tmp_path / "ref", ALERTED))
    assert rotate(ws, user="ops") == 2
    ingest(ws, package(tmp_path / "pkg", "PKG-B", ALERTED, OTHER))
    assert alert_hits(ws, "PKG-B") == {"PKG-B-1"}
    # tokenised under both keys: the stored token under v1 (what the holdings hold), its twin under v2 kept aside
    assert query(ws, "SELECT card_key_version, card_token FROM leads WHERE record_id = 'PKG-B-1'") == [
        (1, token(ws, 1, ALERTED))]
    assert (token(ws, 1, ALERTED), token(ws, 2, ALERTED)) in query(
        ws, "SELECT token, next_token FROM card_token_next WHERE key_version = 1 AND next_version = 2")


def test_rekey_refuses_until_every_token_has_its_twin_then_moves_everything(ws: Workspace, tmp_path: Path) -> None:
    ref = reference(tmp_path / "ref", ALERTED, ONLY_IN_HOLDINGS)
    load_reference(ws, ref)
    old_pkg = package(tmp_path / "a", "PKG-A", ALERTED, ONLY_IN_A)
    ingest(ws, old_pkg)
    rotate(ws, user="ops")
    ingest(ws, package(tmp_path / "b", "PKG-B", ALERTED, OTHER))

    # the cards seen only before the rotation have no twin yet (ALERTED came again in PKG-B: its twin is known)
    with pytest.raises(OreError, match=r"leads \(package PKG-A\): 1; ref_card_alerts: 1"):
        rekey(ws, user="ops")
    assert status(ws).unpaired == {"leads (package PKG-A)": 1, "ref_card_alerts": 1}

    again = ingest(ws, old_pkg)  # read again: pairs its cards, changes nothing else, and says so
    assert again.status == "already ingested" and again.paired == 2  # its two cards: ALERTED, ONLY_IN_A
    assert status(ws).unpaired == {"ref_card_alerts": 1}
    load_reference(ws, ref)  # unchanged, but read again during a rotation
    assert status(ws).unpaired == {}
    result = rekey(ws, user="ops")
    assert (result.old, result.new) == (1, 2)
    assert result.rows == {"leads": 4, "ref_card_alerts": 2}
    assert query(ws, "SELECT DISTINCT card_key_version FROM leads UNION SELECT card_key_version FROM ref_card_alerts") \
        == [(2,)]
    assert query(ws, "SELECT card_token FROM leads WHERE record_id = 'PKG-A-1'") == [(token(ws, 2, ALERTED),)]
    assert alert_hits(ws, "PKG-A") == {"PKG-A-1"} and alert_hits(ws, "PKG-B") == {"PKG-B-1"}

    # the rotation is over: new data under v2 alone, and it still matches
    assert ws.card_key()[0] == 2 and ws.next_card_key() is None
    ingest(ws, package(tmp_path / "c", "PKG-C", ALERTED))
    assert query(ws, "SELECT card_key_version FROM leads WHERE package_id = 'PKG-C'") == [(2,)]
    assert alert_hits(ws, "PKG-C") == {"PKG-C-1"}

    retire(ws, 1, user="ops")
    assert sorted(ws.card_key_files()) == [2]
    assert audit_actions(ws)[-3:] == ["keys.rotate", "keys.rekey", "keys.retire"]


def test_retire_refuses_a_key_in_use_the_tokenising_key_and_the_new_key(ws: Workspace, tmp_path: Path) -> None:
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED))
    with pytest.raises(OreError, match="tokenises"):
        retire(ws, 1, user="ops")
    rotate(ws, user="ops")
    with pytest.raises(OreError, match="being rotated to"):
        retire(ws, 2, user="ops")
    with pytest.raises(OreError, match="no key version 7"):
        retire(ws, 7, user="ops")
    rotate(ws, user="ops")  # a second rotation before the re-key: v2 is skipped, unused
    ws.set_tokenising_version(2)  # as if a re-key had run, but leads still hold v1 tokens
    with pytest.raises(OreError, match=r"still in use \(leads: 1\)"):
        retire(ws, 1, user="ops")
    assert sorted(ws.card_key_files()) == [1, 2, 3]


def test_rekey_without_a_rotation_says_so(ws: Workspace, tmp_path: Path) -> None:
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED))
    with pytest.raises(OreError, match="nothing to re-key"):
        rekey(ws, user="ops")


def test_status_names_each_key_by_a_fingerprint_never_the_key(ws: Workspace, tmp_path: Path) -> None:
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED, OTHER))
    rotate(ws, user="ops")
    st = status(ws)
    assert [(v.version, v.role, v.rows) for v in st.versions] == [
        (1, "tokenising", {"leads": 2}), (2, "new (dual tokenisation)", {})]
    keys = ws.card_keys()
    assert [v.fingerprint for v in st.versions] == [
        hmac.new(keys[v], b"ore card-token key fingerprint", hashlib.sha256).hexdigest()[:16] for v in (1, 2)]
    result = CliRunner().invoke(app, ["keys", "status", "--json"], env=settings_env(ws.root))
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["rotating"] and shown["unpaired"] == {"leads (package PKG-A)": 2}
    for key in keys.values():
        assert key.hex() not in result.output


def test_the_commands_rotate_rekey_and_retire(ws: Workspace, tmp_path: Path) -> None:
    env = settings_env(ws.root)
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED))
    runner = CliRunner()
    out = runner.invoke(app, ["keys", "rotate"], env=env)
    assert out.exit_code == 0 and "card-v2.key" in out.output, out.output
    refused = runner.invoke(app, ["keys", "rekey"], env=env)
    assert refused.exit_code == 2 and "PKG-A" in refused.output
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED))
    done = runner.invoke(app, ["keys", "rekey"], env=env)
    assert done.exit_code == 0 and "v1 to v2" in done.output, done.output
    assert runner.invoke(app, ["keys", "retire", "1"], env=env).exit_code == 0
    assert not (ws.root / "keys" / "card-v1.key").exists()
    with store_for(ws).session() as s:
        users = {e.username for e in s.query(AuditEntry).filter(AuditEntry.action.like("keys.%"))}
    assert len(users) == 1 and next(iter(users)).startswith("os:"), "no one signed in: the OS account is named"


def test_a_damaged_key_state_file_is_refused(ws: Workspace) -> None:
    ws.card_key()
    (ws.root / "keys" / "card-state.json").write_text("{", encoding="utf-8")
    with pytest.raises(OreError, match="card-state.json is damaged"):
        ws.card_key()


def test_case_store_records_are_rekeyed_too(ws: Workspace, tmp_path: Path) -> None:
    """The case store keeps each record's token: a re-key moves it with the bulk tables."""
    from sqlalchemy import select

    from ore.store.models import Record

    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED, OTHER))
    _import_records(ws, [token(ws, 1, ALERTED), token(ws, 1, OTHER), token(ws, 1, OTHER)])
    rotate(ws, user="ops")
    with pytest.raises(OreError, match=r"case store records \(distinct cards\): 2"):
        rekey(ws, user="ops")
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED, OTHER))
    assert rekey(ws, user="ops").rows["case store records"] == 3
    with store_for(ws).session() as s:
        got = s.execute(select(Record.card_token, Record.card_key_version).order_by(Record.record_ref)).all()
    assert got == [(token(ws, 2, n), 2) for n in (ALERTED, OTHER, OTHER)]


def _import_records(ws: Workspace, tokens: list[str]) -> None:
    """Records in the case store as an import of PKG-A leaves them (the token and its key version)."""
    from datetime import date

    from ore.store.models import Operation, Package, Person, Record

    with store_for(ws).session() as s:
        op = Operation(name="test")
        s.add(op)
        s.flush()
        pkg = Package(operation_id=op.id, package_ref="PKG-A", received=date(2002, 5, 20))
        s.add(pkg)
        s.flush()
        person = Person(package_id=pkg.id, person_ref="P-1", kind="identified")
        s.add(person)
        s.flush()
        for i, t in enumerate(tokens):
            s.add(Record(package_id=pkg.id, person_id=person.id, record_ref=f"PKG-A-{i + 1}", card_token=t,
                         card_key_version=1, card_masked="492900******0001", card_last4="0001"))


def test_a_rekey_that_fails_half_way_changes_nothing_and_can_be_run_again(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ore.ops.keys as keys

    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED))
    _import_records(ws, [token(ws, 1, ALERTED)])
    rotate(ws, user="ops")
    ingest(ws, package(tmp_path / "a", "PKG-A", ALERTED))

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(keys, "_record", fail)  # the case store's part fails after the bulk tables were updated
    with pytest.raises(OSError, match="disk full"):
        rekey(ws, user="ops")
    assert query(ws, "SELECT DISTINCT card_key_version FROM leads") == [(1,)]
    assert ws.tokenising_version() == 1 and status(ws).versions[0].rows == {"leads": 1, "case store records": 1}
    monkeypatch.undo()
    assert rekey(ws, user="ops").rows == {"leads": 1, "case store records": 1}
    assert status(ws).versions[1].rows == {"leads": 1, "case store records": 1}
