"""How a command refuses: one red line and exit status 2, never a traceback, and an audit entry.

``ore.cli`` and the sub-apps it registers (``ore watch``) share this; a sub-app cannot import
``ore.cli`` when it loads (``ore.cli`` imports it to register it), so the audit logger is
passed in and looked up only when a refusal happens.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ore.errors import OreError, disk_full

F = TypeVar("F", bound=Callable[..., Any])
Logger = Callable[[str, Exception], None]


def command_name(fn: Callable[..., Any], prefix: str = "") -> str:
    """The command as typed, dotted, from its function's name: ``cases_list`` is ``cases.list``,
    ``screen_cmd`` under ``watch.`` is ``watch.screen``."""
    return prefix + fn.__name__.removesuffix("_cmd").replace("_", ".", 1)


def refusing(log: Callable[[], Logger], console: Console, prefix: str = "",
             where: Callable[[], Path] | None = None) -> Callable[[F], F]:
    """A decorator: an ``OreError`` becomes ``log()(command, error)``, a red line and exit 2.

    With ``where`` (the workspace directory), a full disk in any layer (the case store's commit
    too) is one as well, naming what ran out and where."""

    def user_errors(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                name = command_name(fn, prefix)
                error = e if isinstance(e, OreError) else (
                    disk_full(e, where(), f"running `ore {name.replace('.', ' ')}`") if where else None)
                if error is None:
                    raise
                log()(name, error)
                console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None

        return wrapper  # type: ignore[return-value]

    return user_errors
