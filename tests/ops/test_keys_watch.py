"""The re-offending watch across a key rotation: during it and after the re-key (with the old key retired),
a later feed raises exactly the alerts it raises without any rotation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from casekit import Triaged, triage_scenario
from sqlalchemy import select

from ore.config import Settings
from ore.ingest import ingest, load_reference
from ore.ops.keys import rekey, retire, rotate
from ore.store import Store
from ore.store.models import Record
from ore.watch import screen
from ore.workspace import Workspace
from watch.watchkit import alerts_seen, setup


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Triaged:
    return triage_scenario(tmp_path_factory.mktemp("keys-watch"), people=1500, subscribers=120, seed=31)


def own_copy(t: Triaged, store: Store, root: Path) -> Triaged:
    """The triaged workspace copied (a rotation changes it), with ``store`` as its case store."""
    shutil.copytree(t.ws.root, root)
    url = store.engine.url.render_as_string(hide_password=False)
    return Triaged(t.scenario, Workspace(root, Settings(workspace=root, database_url=url)), t.out)


def test_the_watch_matches_during_a_rotation(store: Store, scenario: Triaged, tmp_path: Path) -> None:
    t = own_copy(scenario, store, tmp_path / "ws")
    _, exp, feed = setup(store, t, tmp_path)
    rotate(t.ws, user="ops")
    ingest(t.ws, t.scenario / "package")  # new data would be tokenised under both keys from here on
    screen(store, t.ws, feed, out=tmp_path / "out")
    assert alerts_seen(store) == exp.alerts


def test_the_watch_matches_after_the_rekey_without_the_old_key(store: Store, scenario: Triaged,
                                                                tmp_path: Path) -> None:
    t = own_copy(scenario, store, tmp_path / "ws")
    _, exp, feed = setup(store, t, tmp_path)
    rotate(t.ws, user="ops")
    ingest(t.ws, t.scenario / "package")
    load_reference(t.ws, t.scenario / "reference")
    rekey(t.ws, user="ops")
    retire(t.ws, 1, user="ops")
    assert sorted(t.ws.card_key_files()) == [2]
    with store.session() as s:
        assert set(s.scalars(select(Record.card_key_version).where(Record.card_token.is_not(None)))) == {2}
    screen(store, t.ws, feed, out=tmp_path / "out")
    assert alerts_seen(store) == exp.alerts
