"""``ore keys``: status, rotate, rekey, retire (``ore.ops.keys``), registered in ``ore.cli``.

Key management is the operator's: whoever runs these commands can read ``keys/`` anyway,
so they ask for no role; each is audited under the signed-in user, else the OS account.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ore.workspace import Workspace

keys_app = typer.Typer(help="Card-token keys: status, rotate to a new version, re-key the data, retire an old key.",
                       no_args_is_help=True)
console = Console()


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``ore.cli.user_errors``, looked up when called (``ore.cli`` imports this module)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ore import cli

        return cli.user_errors(fn)(*args, **kwargs)

    return wrapper


def actor() -> tuple[Workspace, str]:
    """The workspace, and who acts: the signed-in user if credentials are given, else the OS account."""
    from ore import cli

    ws = cli._workspace()
    who = cli._who(ws) if cli._has_credentials(ws) else None
    return ws, who.username if who is not None else f"os:{cli._current_user()}"


def purpose() -> str:
    from ore import cli

    return cli._purpose("administration")


@keys_app.command("status")
@user_errors
def keys_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Key versions, their fingerprints (never the key), and how many stored tokens each one made."""
    from ore import cli
    from ore.ops.keys import status

    st = status(cli._workspace())
    if as_json:
        typer.echo(json.dumps(st.to_dict(), indent=2))
        return
    table = Table(title="Card-token keys")
    for col in ("version", "fingerprint", "created (UTC)", "role", "tokens held"):
        table.add_column(col, overflow="fold")
    for v in st.versions:
        held = ", ".join(f"{t} {n:,}" for t, n in v.rows.items()) or "none"
        table.add_row(f"v{v.version}", v.fingerprint, v.created, v.role, held)
    console.print(table)
    if st.rotating:
        console.print(Text(f"Rotation in progress: new cards are tokenised under v{st.tokenising} and "
                           f"v{st.newest}."), soft_wrap=True)
        if st.unpaired:
            where = "; ".join(f"{p} {n:,}" for p, n in st.unpaired.items())
            console.print(Text(f"Without a twin under v{st.newest} yet (read their sources again): {where}"),
                          soft_wrap=True)
        else:
            console.print(Text("Every token has its twin: `ore keys rekey` can finish the rotation."))


@keys_app.command("rotate")
@user_errors
def keys_rotate() -> None:
    """Add a new key version; from now on new cards are tokenised under the old and the new key."""
    from ore.ops.keys import rotate

    ws, user = actor()
    version = rotate(ws, user=user, purpose=purpose())
    console.print(Text(f"Made keys/card-v{version}.key: back it up now. Next: read the holdings and the packages "
                       "held again (`ore reference load DIR`, `ore ingest PACKAGE`), then `ore keys rekey`."),
                  soft_wrap=True)


@keys_app.command("rekey")
@user_errors
def keys_rekey() -> None:
    """Move every stored card token to the newest key; refuses while a token has no twin under it."""
    from ore.ops.keys import rekey

    ws, user = actor()
    r = rekey(ws, user=user, purpose=purpose())
    rows = ", ".join(f"{t} {n:,}" for t, n in r.rows.items()) or "no rows"
    console.print(Text(f"Re-keyed from v{r.old} to v{r.new} ({rows}). Once backed up: `ore keys retire {r.old}`."),
                  soft_wrap=True)


@keys_app.command("retire")
@user_errors
def keys_retire(
    version: Annotated[int, typer.Argument(help="The key version to delete (ore keys status).")],
) -> None:
    """Delete an old key version; refuses while any stored token is made under it."""
    from ore.ops.keys import retire

    ws, user = actor()
    retire(ws, version, user=user, purpose=purpose())
    console.print(Text(f"Retired key version {version}: keys/card-v{version}.key is deleted. Backups made "
                       "before the re-key still hold it and need it."), soft_wrap=True)
