"""Who sees which alerts: an offender manager their own force's only (and on PostgreSQL the database says
so too); routing follows the recorded offender manager; CPORT is recorded for convicted persons only and
ranks the alerts; every listing is logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from casekit import Triaged, as_user
from sqlalchemy import select
from watchkit import alerts_seen, setup

from ore.auth.principal import AccessDenied
from ore.errors import OreError
from ore.store.access import AuditEntry
from ore.store.watch_models import WatchAlert
from ore.watch import list_alerts, record_cport, refresh, screen, set_manager
from ore.watch.cport import tool

FIVE = dict(zip(tool().codes, ["yes", "yes", "yes", "yes", "yes", "no", "no"], strict=True))
TWO_AND_ONE_UNKNOWN = dict(zip(tool().codes, ["yes", "yes", "no", "no", "no", "no", "unknown"], strict=True))


def test_an_offender_manager_sees_only_their_forces_alerts(store, triaged: Triaged, tmp_path: Path) -> None:
    op, exp, feed = setup(store, triaged, tmp_path)
    screen(store, triaged.ws, feed, out=tmp_path / "out")
    watched = op.convicted + op.cautioned
    force = watched[0].force
    mine = {p.ref for p in watched if p.force == force}
    om = as_user("offender_manager", force)
    assert set(alerts_seen(store, om)) == mine
    assert alerts_seen(store, as_user("offender_manager", "NOWHERE")) == {}
    with store.session() as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "watch.alerts")))
    assert [json.loads(e.objects) for e in entries if e.username == om.username] == [sorted(mine)]
    with pytest.raises(AccessDenied, match="needs the permission alerts.read"):
        alerts_seen(store, as_user("investigator", force))  # an own-force investigator: cases, not alerts
    with pytest.raises(AccessDenied, match="watch.screen"):
        screen(store, triaged.ws, feed, principal=om, out=tmp_path / "again")


def test_alerts_follow_the_offender_manager_and_rank_by_cport(store, triaged: Triaged, tmp_path: Path) -> None:
    op, exp, feed = setup(store, triaged, tmp_path)
    screen(store, triaged.ws, feed, out=tmp_path / "out")
    first, second = op.convicted[0], op.convicted[1]
    home = first.force
    with store.session(as_user("supervisor", None)) as s:  # the second person's manager is in the first's force
        set_manager(s, second.ref, home, manager="PC Okafor")
        set_manager(s, op.cautioned[0].ref, home)
    om = as_user("offender_manager", home)
    assert {first.ref, second.ref, op.cautioned[0].ref} <= set(alerts_seen(store, om))
    if second.force != home:
        assert second.ref not in alerts_seen(store, as_user("offender_manager", second.force))

    with store.session(om) as s:
        assert record_cport(s, second.ref, FIVE).shown() == "5"
        assert record_cport(s, first.ref, TWO_AND_ONE_UNKNOWN).shown() == "2-3"
        with pytest.raises(OreError, match="not convicted"):
            record_cport(s, op.cautioned[0].ref, FIVE)
        with pytest.raises(OreError, match="needs an answer .* for every item"):
            record_cport(s, first.ref, {k: v for k, v in FIVE.items() if k != "young_at_index"})
    other = [p for p in op.convicted[2:] if p.force != home]
    if other:
        with store.session(om) as s, pytest.raises(OreError, match="no watched person"):
            record_cport(s, other[0].ref, FIVE)  # another force's person is not theirs to assess

    refresh(store)
    with store.session(om) as s:
        views = list_alerts(s)
    assert [v.subject.person_ref for v in views][:2] == [second.ref, first.ref]
    assert [v.cport_shown for v in views][:2] == ["5", "2-3"]
    assert all(v.cport_shown == "not assessed" for v in views[2:])
    assert any("about 5 times" in line for line in views[0].cport_context)


def test_on_postgresql_the_database_scopes_alerts_too(store, triaged: Triaged, tmp_path: Path) -> None:
    if store.dialect != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    op, _, feed = setup(store, triaged, tmp_path)
    screen(store, triaged.ws, feed, out=tmp_path / "out")
    force = op.convicted[0].force
    with store.session(as_user("offender_manager", force)) as s:
        subjects = {a.subject_id for a in s.scalars(select(WatchAlert))}  # no scoping in the query itself
    with store.session() as s:
        everyone = list(s.scalars(select(WatchAlert)))
    assert 0 < len(subjects) < len({a.subject_id for a in everyone})
