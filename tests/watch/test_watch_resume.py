"""A screen interrupted anywhere has raised nothing, and run again gives exactly what one run gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from casekit import Triaged
from watchkit import alerts_seen, counts, lead_rows, setup

import ore.watch.screening as screening
from ore.watch import screen


class PowerCut(Exception):
    pass


def test_killed_before_the_commit_it_resumes_with_the_same_package(store, triaged: Triaged, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, exp, feed = setup(store, triaged, tmp_path)

    def cut(*_a: object, **_k: object) -> None:
        raise PowerCut

    monkeypatch.setattr(screening, "_commit", cut)
    with pytest.raises(PowerCut):
        screen(store, triaged.ws, feed, out=tmp_path / "out")
    assert counts(store) == (0, 0, 0, 0) and alerts_seen(store) == {}
    package = next((tmp_path / "out").glob("WATCH-*")) / "leads.csv"
    first = package.read_bytes()  # written whole before the commit, as a crash would leave it

    monkeypatch.undo()
    summary = screen(store, triaged.ws, feed, out=tmp_path / "out")
    assert summary.status == "screened" and alerts_seen(store) == exp.alerts
    assert package.read_bytes() == first and {int(r["feed_line"]) for r in lead_rows(summary)} == exp.leads
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no half-written package
    assert screen(store, triaged.ws, feed, out=tmp_path / "out").status == "already screened"


def test_a_failure_inside_the_commit_leaves_nothing_behind(store, triaged: Triaged, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, exp, feed = setup(store, triaged, tmp_path)
    calls = []

    def audit_fails(*_a: object, **_k: object) -> None:  # the last write of the transaction
        calls.append(1)
        raise PowerCut

    monkeypatch.setattr(screening, "record_for", audit_fails)
    with pytest.raises(PowerCut):
        screen(store, triaged.ws, feed, out=tmp_path / "out")
    assert calls and counts(store) == (0, 0, 0, 0)  # feed, alerts, rows and leads rolled back together
    monkeypatch.undo()
    screen(store, triaged.ws, feed, out=tmp_path / "out")
    assert alerts_seen(store) == exp.alerts and counts(store)[0] == 1
