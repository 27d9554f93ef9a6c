"""The vendored assets are the recorded ones, and ``ore serve`` is a command with its options."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from typer.testing import CliRunner

from ore.web.cli import app as serve_app

STATIC = Path(__file__).resolve().parents[2] / "src" / "ore" / "web" / "static"


def test_vendored_files_match_versions_md() -> None:
    table = (STATIC / "VERSIONS.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S+\.js) \|.*\| ([0-9a-f]{64}) \|$", table, re.M)
    assert {name for name, _ in rows} == {"htmx.min.js", "cytoscape.min.js"}
    for name, digest in rows:
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    assert sorted(p.name for p in (STATIC / "licences").iterdir()) == [
        "cytoscape-3.35.0-LICENSE.txt", "htmx.org-2.0.11-LICENSE.txt"]


def test_no_asset_is_fetched_from_elsewhere() -> None:
    templates = Path(__file__).resolve().parents[2] / "src" / "ore" / "web" / "templates"
    for t in templates.glob("*.html"):
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", t.read_text(encoding="utf-8")), t.name


def test_serve_command_help() -> None:
    r = CliRunner().invoke(serve_app, ["--help"])
    assert r.exit_code == 0
    for option in ("--workspace", "--host", "--port", "--reference", "--ssl-certfile"):
        assert option in r.output
