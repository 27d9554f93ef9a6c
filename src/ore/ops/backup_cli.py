"""``ore backup`` and ``ore restore`` (``ore.ops.backup``), registered in ``ore.cli``.

Like key management, backup is the operator's: the commands ask for no role (whoever runs
them can read the workspace files anyway) and are audited under the signed-in user, else
the OS account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ore.ops.keys_cli import actor, purpose, user_errors

console = Console()
err_console = Console(stderr=True)


def _print_checks(title: str, checks: list[tuple[str, bool, str]]) -> None:
    table = Table(title=title)
    for col in ("check", "result", "found"):
        table.add_column(col, overflow="fold")
    for name, ok, detail in checks:
        table.add_row(name, "[green]OK[/]" if ok else "[bold red]FAILED[/]", escape(detail))
    console.print(table)


@user_errors
def backup_command(
    archive: Annotated[Path, typer.Argument(help="The backup file to write (never overwritten), or to check "
                                                 "with --verify.")],
    verify_only: Annotated[bool, typer.Option("--verify", help="Check an existing backup instead of writing one: "
                                                               "hashes, the copy opens, its audit chain verifies.")]
    = False,
    without_keys: Annotated[bool, typer.Option("--without-keys", help="Leave the card-token and signing keys out "
                                                                      "(back keys/ up apart).")] = False,
    without_store: Annotated[bool, typer.Option("--without-store", help="Leave the case store out (a PostgreSQL "
                                                                        "store backed up by your own tooling).")]
    = False,
) -> None:
    """Back up the workspace (case store, DuckDB, keys, signed audit checkpoint) to one file, mode 0600."""
    from ore.ops.backup import backup, verify

    if verify_only:
        v = verify(archive)
        _print_checks(f"backup {archive.name} of {v.manifest.get('created_at')} (ore {v.manifest.get('ore_version')})",
                      v.checks)
        if not v.ok:
            err_console.print(Text("FAILED: " + "; ".join(v.problems)), soft_wrap=True)
            raise typer.Exit(1)
        console.print(Text("ok: the backup is whole and opens; its audit chain verifies."))
        return
    ws, user = actor()
    m = backup(ws, archive, user=user, purpose=purpose(), keys=not without_keys, store=not without_store)
    head = m["audit_head"] or {}
    console.print(Text(f"Backup written to {archive} (mode 0600): {len(m['files'])} files, audit log up to entry "
                       f"{head.get('seq', '-')}."), soft_wrap=True)
    console.print(Text(m["notice"], style="bold yellow"), soft_wrap=True)
    if ws.settings.audit_checkpoint is None:
        console.print(Text("ORE_AUDIT_CHECKPOINT is not set: a restored older copy can be told only from the "
                           "checkpoint inside each backup. Set it to a file outside the workspace."), soft_wrap=True)


@user_errors
def restore_command(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="The backup file (ore backup).")],
    workspace: Annotated[Path | None, typer.Option("--workspace", help="Workspace to restore into "
                                                                       "[default: ore -w / ORE_WORKSPACE].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace what a non-empty workspace holds.")] = False,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Checkpoint to compare the restored log "
                                                                         "with [default: ORE_AUDIT_CHECKPOINT].")]
    = None,
    verify_only: Annotated[bool, typer.Option("--verify-only", help="Check the backup, restore nothing.")] = False,
) -> None:
    """Restore a backup into a workspace: verified before and after; an older copy is reported as a rollback."""
    from ore import cli
    from ore.config import get_settings
    from ore.ops.backup import restore, verify
    from ore.ops.cli import _workspace_from

    if verify_only:
        v = verify(archive)
        _print_checks(f"backup {archive.name}", v.checks)
        raise typer.Exit(0 if v.ok else 1)
    target = _workspace_from(ctx, workspace) or get_settings().workspace
    who = f"os:{cli._current_user()}"  # the users are those of the store being restored: no one is signed in yet
    r = restore(archive, target, settings=get_settings(), user=who, purpose=purpose(), force=force,
                checkpoint=checkpoint)
    _print_checks(f"restored {archive.name} of {r.manifest.get('created_at')} into {target}", r.checks.checks)
    for w in r.warnings:
        err_console.print(Text(w, style="bold yellow"), soft_wrap=True)
    if r.rollback:
        err_console.print(Text(f"WARNING: {r.rollback}. The case store now holds less than it did at the last "
                               "checkpoint: find out why before anyone works on it (docs/operator.md, Backup and "
                               "restore).", style="bold red"), soft_wrap=True)
        raise typer.Exit(3)
    console.print(Text(f"ok: restored and verified. Audit checkpoint: {r.checkpoint}"), soft_wrap=True)
