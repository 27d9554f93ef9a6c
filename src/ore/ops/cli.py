"""``ore doctor``: the command over ``ore.ops.doctor``, registered in ``ore.cli``.

The workspace comes from ``--workspace`` here, else from the ``ore -w`` / ``ORE_WORKSPACE``
given to the main command, else the configured default. Exit status 0 when no check fails
(warnings allowed), 1 when one does: a monitoring job can run it as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ore.ops.doctor import MIN_FREE_GIB, WARN_FREE_GIB, DoctorReport, run_checks

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _workspace_from(ctx: typer.Context, workspace: Path | None) -> Path | None:
    if workspace is not None:
        return workspace
    parent = ctx.parent
    while parent is not None:  # `ore -w DIR doctor`: the main command's option
        if parent.params.get("workspace") is not None:
            return Path(parent.params["workspace"])
        parent = parent.parent
    return None


def print_report(report: DoctorReport, console: Console) -> None:
    table = Table(title=f"ore doctor: {report.workspace}", show_lines=False)
    for col in ("check", "status", "found", "what to do"):
        table.add_column(col, overflow="fold")
    for c in report.checks:
        table.add_row(c.name, f"[{STYLE[c.status]}]{c.status.upper()}[/]", escape(c.detail), escape(c.fix or ""))
    console.print(table)
    console.print("Versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()), highlight=False)
    failed = [c.name for c in report.checks if c.status == "fail"]
    if failed:
        console.print(f"[bold red]{len(failed)} check(s) failed:[/] {', '.join(failed)}")
    else:
        console.print("[green]ok:[/] nothing to fix" + (" (see the warnings)" if any(
            c.status == "warn" for c in report.checks) else ""))


def doctor(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None, typer.Option("--workspace", "-w", help="Workspace directory [default: ore -w / ORE_WORKSPACE].")
    ] = None,
    min_free_gib: Annotated[
        float, typer.Option("--min-free-gib", help="Free disk below which the check fails.")
    ] = MIN_FREE_GIB,
    warn_free_gib: Annotated[
        float, typer.Option("--warn-free-gib", help="Free disk below which the check warns.")
    ] = WARN_FREE_GIB,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (for monitoring).")] = False,
) -> None:
    """Check the deployment: case store reachable and at the newest schema, card key private, audit chain, disk.

    Prints what to fix; exit status 1 if any check fails. Changes nothing.
    """
    report = run_checks(_workspace_from(ctx, workspace), min_free_gib=min_free_gib, warn_free_gib=warn_free_gib)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report, Console(soft_wrap=False))
    if not report.ok:
        raise typer.Exit(1)
