"""The command line: help and version read well, user errors are one clear line and exit 2."""

import typer
from typer.main import get_command
from typer.testing import CliRunner

from ore import __version__
from ore.cli import app

runner = CliRunner()


def _commands(group: typer.core.TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if hasattr(cmd, "commands"):
            found.extend(_commands(cmd, path))
    return found


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip().startswith(f"ore {__version__} (schema ")  # and the migration head


def test_every_command_has_help_with_a_summary() -> None:
    root = get_command(app)
    commands = _commands(root)
    assert {("ingest",), ("triage",), ("evaluate",), ("demo",), ("reference", "load")} <= set(commands)
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage" in result.stdout
        cmd = root
        for part in path:
            cmd = cmd.commands[part]  # type: ignore[attr-defined]
        assert (cmd.help or "").strip(), f"ore {' '.join(path)} has no help text"


def test_missing_package_is_one_clear_error(tmp_path) -> None:
    result = runner.invoke(app, ["--workspace", str(tmp_path / "ws"), "ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output
    assert "Traceback" not in result.output


def test_workspace_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ORE_WORKSPACE", str(tmp_path / "from-env"))
    result = runner.invoke(app, ["quarantine"])
    assert result.exit_code == 0
    assert (tmp_path / "from-env" / "keys").is_dir()
