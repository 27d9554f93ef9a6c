"""``ore watch`` on the command line (the sub-app alone, as ``ore.cli`` will register it): signed-in users,
one clear line for an error, and every command and option written down in docs/watch.md."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import typer
from casekit import PASSWORD, Triaged, make_user
from sqlalchemy import select
from typer.main import get_command
from typer.testing import CliRunner
from watchkit import setup

import ore.cli
from ore.store.access import AuditEntry
from ore.watch import cli as watch_cli
from ore.watch.cli import app

runner = CliRunner()
DOC = (Path(__file__).resolve().parents[2] / "docs" / "watch.md").read_text(encoding="utf-8")


def test_every_command_and_option_has_help_and_is_documented() -> None:
    root = get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    assert set(root.commands) == {"screen", "alerts", "ack", "list", "manager", "cport", "flag", "unflag", "flags"}
    for name, cmd in root.commands.items():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.stdout, name
        assert (cmd.help or "").strip(), f"ore watch {name} has no help text"
        assert f"`ore watch {name}" in DOC, f"docs/watch.md does not describe ore watch {name}"
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in DOC, f"docs/watch.md does not mention {opt} of ore watch {name}"


@pytest.fixture
def cli(store, triaged: Triaged, monkeypatch: pytest.MonkeyPatch):
    """Run ``ore watch`` against this test's store and the triaged workspace, as a named user."""
    monkeypatch.setenv("ORE_WORKSPACE", str(triaged.ws.root))
    monkeypatch.setenv("ORE_DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ORE_PASSWORD", PASSWORD)
    monkeypatch.delenv("ORE_TOKEN", raising=False)
    monkeypatch.setattr(watch_cli.console, "width", 250)  # tables whole, not cut to a terminal's width

    def run(user: str, *args: str):
        monkeypatch.setattr(ore.cli.State, "user", user)
        monkeypatch.setattr(ore.cli.State, "workspace", None)
        return runner.invoke(app, [str(a) for a in args])

    return run


def test_screen_then_alerts_cport_and_flags(cli, store, triaged: Triaged, tmp_path: Path) -> None:
    op, exp, feed = setup(store, triaged, tmp_path)
    force = op.convicted[0].force
    make_user(store, "ana.lyst", "analyst")
    make_user(store, "om.one", "offender_manager", force)

    done = cli("ana.lyst", "screen", feed, "--out", tmp_path / "out")
    assert done.exit_code == 0, done.output
    assert "new alerts" in done.stdout and f"{len(exp.alerts)}" in done.stdout and "WATCH-" in done.stdout
    again = cli("ana.lyst", "screen", feed, "--out", tmp_path / "out", "--json")
    assert json.loads(again.stdout)["status"] == "already screened"

    mine = {p.ref for p in op.convicted + op.cautioned if p.force == force}
    listed = cli("om.one", "alerts", "--json")
    assert listed.exit_code == 0, listed.output
    assert {a["person"] for a in json.loads(listed.stdout)} == mine
    person = op.convicted[0].ref
    answers = ["--young-at-index", "yes", "--prior-criminal-history", "yes", "--contact-sexual-offending", "yes",
               "--conditional-release-failure", "yes", "--sexual-interest-in-children", "yes",
               "--more-boy-content-images", "no", "--more-boy-content-other", "unknown"]
    scored = cli("om.one", "cport", person, *answers, "--note", "from the OASys review")
    assert scored.exit_code == 0, scored.output
    assert f"{person}: CPORT 5-6" in scored.stdout and "3% to 41%" in scored.stdout
    shown = cli("om.one", "alerts", "--rows")
    assert shown.exit_code == 0 and person in shown.stdout and "5-6" in shown.stdout
    first = json.loads(cli("om.one", "alerts", "--json").stdout)[0]
    assert (first["person"], first["cport"]) == (person, "5-6") and first["feed_rows"]
    assert cli("om.one", "ack", first["alert"], "--note", "visited").exit_code == 0
    assert json.loads(cli("om.one", "alerts", "--json", "--status", "new").stdout) == [
        a for a in json.loads(cli("om.one", "alerts", "--json").stdout) if a["alert"] != first["alert"]]
    assert person in cli("om.one", "list").stdout

    assert cli("ana.lyst", "flag", "merchant", "New  Biller", "--reason", "sells CHILD-SITE-03").exit_code == 0
    flags = cli("ana.lyst", "flags").stdout
    assert "NEW BILLER" in flags and "KEYZ AV SERVICES" in flags
    assert cli("ana.lyst", "unflag", "merchant", "new biller", "--reason", "a payment gateway").exit_code == 0
    assert "NEW BILLER" not in cli("ana.lyst", "flags").stdout


def test_errors_are_one_clear_line(cli, store, triaged: Triaged, tmp_path: Path) -> None:
    _, _, feed = setup(store, triaged, tmp_path)
    make_user(store, "ana.lyst", "analyst")
    make_user(store, "om.one", "offender_manager", "MPS")
    for user, args, message in (
        ("ana.lyst", ["screen", feed, "--engine", "flink"], "one of duckdb, spark"),
        ("om.one", ["screen", feed], "needs the permission watch.screen"),
        ("ana.lyst", ["screen", tmp_path / "nope.csv"], "no such feed file"),
        ("om.one", ["cport", "PER999999", "--young-at-index", "maybe", "--prior-criminal-history", "no",
                    "--contact-sexual-offending", "no", "--conditional-release-failure", "no",
                    "--sexual-interest-in-children", "no", "--more-boy-content-images", "no",
                    "--more-boy-content-other", "no"], "yes, no or unknown"),
        ("om.one", ["ack", "999"], "no watch alert 999"),
    ):
        result = cli(user, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    with store.session() as s:  # a signed-in user's refusals are on the audit trail, named as typed
        # (the CPORT answer is checked before anyone signs in)
        refused = Counter(e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.outcome.like("refused:%"))))
    assert refused == {"cli.watch.screen": 3, "cli.watch.ack": 1}
