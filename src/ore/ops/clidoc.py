"""The command-line reference (docs/cli.md), written from the Typer app itself.

``python -m ore.ops.clidoc > docs/cli.md`` after a command or option changes; the docs test
(tests/ops/test_docs.py) fails while any option of any command is missing from the docs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import typer

SKIP = {"--help", "--install-completion", "--show-completion"}


def walk(command: Any, path: tuple[str, ...] = ("ore",)) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of a click/Typer tree with its path, the root first, subcommands in name order."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


def options(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "param_type_name", "") == "option"
            and not set(p.opts) & SKIP]


def arguments(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]


def _name(argument: Any) -> str:
    return str(argument.metavar or argument.name).upper()


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _default(p: Any) -> str:
    d = p.default
    if d is None or d is False or callable(d) or getattr(p, "is_flag", False):
        return ""
    return f"`{d}`"


def reference(app: typer.Typer) -> str:
    root = typer.main.get_command(app)
    out = ["# Command-line reference", "",
           "Every command and option of `ore`, written from the program itself "
           "(`python -m ore.ops.clidoc > docs/cli.md`). `ore COMMAND --help` prints the same. "
           "Options of the main command (`--workspace`, `--user`, `--purpose`) go before the command: "
           "`ore -w /srv/ore --user sgt.jones cases list`.", ""]
    for path, cmd in walk(root):
        if getattr(cmd, "hidden", False):
            continue
        out += [f"## `{' '.join(path)}`", ""]
        help_text = (cmd.help or "").strip()
        if help_text:
            out += [" ".join(line.strip() for line in help_text.split("\n\n")[0].splitlines()), ""]
            rest = help_text.split("\n\n", 1)[1:] if "\n\n" in help_text else []
            for para in rest:
                out += [" ".join(line.strip() for line in para.splitlines()), ""]
        args = arguments(cmd)
        if args:
            usage = " ".join(_name(a) if a.required else f"[{_name(a)}]" for a in args)
            out += [f"Arguments: `{usage}`", ""]
            for a in args:
                out.append(f"- `{_name(a)}`: {_cell(getattr(a, 'help', ''))}")
            out.append("")
        opts = options(cmd)
        if opts:
            out += ["| option | default | what |", "|---|---|---|"]
            for p in opts:
                names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
                env = f" (environment: `{p.envvar}`)" if getattr(p, "envvar", None) else ""
                out.append(f"| {names} | {_default(p)} | {_cell(p.help)}{env} |")
            out.append("")
        if getattr(cmd, "commands", None):
            subs = ", ".join(f"`{name}`" for name in sorted(cmd.commands))
            out += [f"Commands: {subs}.", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    from ore.cli import app

    sys.stdout.write(reference(app))


if __name__ == "__main__":
    main()
