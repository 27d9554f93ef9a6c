"""Collection on the bulk tables is logged: loading holdings, ingesting a package, viewing its quarantine."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from ore.cli import app
from ore.store import store_for
from ore.store.access import AuditEntry
from ore.synth import generate
from ore.workspace import Workspace


def test_reference_load_ingest_and_quarantine_views_are_audit_entries(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario"
    generate(scenario, people=2_000, subscribers=60, seed=7)
    ws_dir = tmp_path / "ws"
    runner = CliRunner()
    for args in (["reference", "load", str(scenario / "reference")], ["ingest", str(scenario / "package")],
                 ["quarantine"], ["quarantine", "--out", str(tmp_path / "q.csv")]):
        result = runner.invoke(app, ["--workspace", str(ws_dir), *args])
        assert result.exit_code == 0, result.output
    with store_for(Workspace.open(ws_dir)).session(None) as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    got = [(e.action, e.category) for e in entries]
    assert got == [("reference.load", "collection"), ("ingest", "collection"),
                   ("quarantine.view", "consultation"), ("quarantine.export", "consultation")]
    assert all(e.username.startswith("os:") for e in entries)
    loaded = json.loads(entries[0].objects) if isinstance(entries[0].objects, str) else entries[0].objects
    assert "reference/register.csv" in loaded
