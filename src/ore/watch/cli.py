"""``ore watch``: the re-offending watch's commands (a Typer sub-app; ``ore.cli`` registers it).

The commands sign the user in, and keep the audit purpose, exactly as the rest of ``ore``
does: they use ``ore.cli``'s helpers, imported when a command runs (``ore.cli`` imports
this module to register it). What a listing shows is printed only after its transaction,
and so its audit entry, has committed: no view without its log entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ore.errors import OreError
from ore.refusals import refusing

app = typer.Typer(
    help="Re-offending watch: screen payment feeds against convicted persons' cards and accounts; alerts; CPORT.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)
ANSWER = ("yes", "no", "unknown")


def _main() -> Any:
    from ore import cli

    return cli


@app.callback()
def watch_main() -> None:
    """Re-offending watch: screen feeds (docs/watch.md), list alerts by force, record CPORT items."""
    # run alone (tests, scripts), nobody has signed in for this command yet
    _main().State.principal = None


user_errors = refusing(lambda: _main()._log_refusal, err_console, prefix="watch.",
                       where=lambda: _main()._workspace_root())


def _t(value: Any) -> Text:
    if value is None:
        return Text("")
    if hasattr(value, "strftime"):
        return Text(value.strftime("%Y-%m-%d %H:%M"))
    return Text(str(value))


def _store(ws: Any) -> Any:
    from ore.store import store_for

    return store_for(ws)


@app.command("screen")
@user_errors
def screen_cmd(
    feed: Annotated[Path, typer.Argument(help="Payment feed, .csv or .parquet (columns: docs/watch.md).")],
    out: Annotated[Path | None, typer.Option("--out", help="Where the lead package and problems.csv go "
                                                           "(default: WORKSPACE/watch/<feed hash>).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (embedded), or spark: Spark SQL for a feed larger "
                                                         "than one machine (the spark extra, Java 17; "
                                                         "ORE_SPARK_MASTER names a cluster).")] = "duckdb",
    operation: Annotated[str, typer.Option("--operation", help="Operation named in the new leads' manifest.")]
    = "Re-offending watch",
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes tokenising raw card numbers "
                                                                          "with duckdb (default: one per core; "
                                                                          "Spark uses its own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Screen a payment feed: alerts for watched persons' purchases, new leads from flagged merchants."""
    from ore.watch.screening import screen

    main = _main()
    ws = main._workspace()
    who = main._who(ws)
    with err_console.status(f"Screening {feed.name} ..."):
        result = screen(_store(ws), ws, feed, out=out, engine=engine, principal=who, operation=operation,
                        purpose=main._purpose("investigation"), workers=workers)
    if as_json:
        console.print_json(json.dumps(result.as_dict(), default=str))
        return
    c = result.counts
    if result.status == "already screened":
        console.print(Text(f"{result.feed}: {'; '.join(result.notes)}"), soft_wrap=True)
        return
    table = Table(title=f"Screened {result.feed}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, key in (("rows read", "rows_read"), ("rows not screened (broken)", "rows_not_screened"),
                       ("problems (line, field)", "problems"), ("rows by watched persons", "watched_rows"),
                       ("new alerts", "alerts"), ("rows behind them", "alert_rows"),
                       ("rows from flagged merchants", "flagged_rows"), ("new leads", "leads")):
        table.add_row(label, f"{c.get(key, 0):,}")
    console.print(table)
    if result.alerts_by_force:
        console.print(Text("Alerts by force: " + ", ".join(f"{k} {v}" for k, v in result.alerts_by_force.items())))
    if result.leads_package:
        console.print(Text(f"New leads: {result.leads_package} (a lead package: ore triage it)"), soft_wrap=True)
    if c.get("problems"):
        console.print(Text(f"Problems by line and field: {Path(result.out or '') / 'problems.csv'}"), soft_wrap=True)
    for note in result.notes:
        console.print(Text(f"note: {note}"), soft_wrap=True)


@app.command("alerts")
@user_errors
def alerts_cmd(
    force: Annotated[str | None, typer.Option("--force", help="Only alerts routed to this force.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="new or acknowledged.")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Show the feed rows behind each alert.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as JSON.")] = False,
) -> None:
    """List watch alerts you may see, ranked by CPORT score, with what matched and the feed rows."""
    from ore.watch.alerts import list_alerts, refresh

    main = _main()
    if status is not None and status not in ("new", "acknowledged"):
        raise OreError(f"--status {status!r}: new or acknowledged")
    ws = main._workspace()
    main._who(ws)
    refresh(_store(ws))
    with main._acting("investigation") as s, console.capture() as captured:
        views = list_alerts(s, force=force, status=status, with_rows=rows or as_json, limit=limit)
        if as_json:
            console.print_json(json.dumps([v.as_dict() for v in views], default=str))
        else:
            _alerts_table(views, rows)
    console.file.write(captured.get())


def _alerts_table(views: list[Any], rows: bool) -> None:
    table = Table(title=f"{len(views):,} watch alert(s), highest CPORT first")
    table.add_column("alert", justify="right")
    table.add_column("person", no_wrap=True, min_width=9)
    for col in ("package", "force", "CPORT", "matched on", "rows", "flagged", "last purchase", "feed", "status"):
        table.add_column(col)
    for v in views:
        a, s = v.alert, v.subject
        matched = "; ".join(f"{m['kind']} {m['shown']}" for m in v.matched)
        table.add_row(*(_t(x) for x in (a.id, s.person_ref, s.package_ref, s.force_code, v.cport_shown, matched,
                                        a.row_count, a.flagged_rows, a.last_time, v.feed.name, a.status)))
    console.print(table)
    for v in views:
        if v.cport_context:
            console.print(Text(f"alert {v.alert.id} (CPORT {v.cport_shown}): " + " ".join(v.cport_context)),
                          soft_wrap=True)
        if rows and v.rows:
            t = Table(title=f"alert {v.alert.id}: feed rows")
            for col in ("line", "time", "merchant", "product", "amount", "card", "email", "username", "ip",
                        "matched on", "flagged"):
                t.add_column(col)
            for r in v.rows:
                t.add_row(*(_t(x) for x in (r.line, r.transaction_time, r.merchant, r.product, r.amount,
                                            r.card_masked or (f"…{r.card_last4}" if r.card_last4 else None),
                                            r.email, r.username, r.ip_address, r.matched_on,
                                            "yes" if r.flagged else "no")))
            console.print(t)


@app.command("ack")
@user_errors
def ack_cmd(
    alert: Annotated[int, typer.Argument(help="Alert number (ore watch alerts).")],
    note: Annotated[str | None, typer.Option("--note", help="What was done about it.")] = None,
) -> None:
    """Acknowledge an alert: it has been seen and acted on (who, when and the note are recorded)."""
    from ore.watch.alerts import acknowledge

    with _main()._acting("investigation") as s:
        acknowledge(s, alert, note=note)
    console.print(Text(f"Alert {alert} acknowledged."))


@app.command("list")
@user_errors
def list_cmd(
    force: Annotated[str | None, typer.Option("--force", help="Only persons whose alerts go to this force.")] = None,
    off: Annotated[bool, typer.Option("--off", help="Include persons taken off the watch (and why).")] = False,
) -> None:
    """List watched persons (convicted or cautioned) you may see, with their force and CPORT score."""
    from ore.watch.alerts import refresh
    from ore.watch.offenders import list_watched

    main = _main()
    ws = main._workspace()
    main._who(ws)
    refresh(_store(ws))
    with main._acting("investigation") as s, console.capture() as captured:
        found = list_watched(s, force=force, include_off=off)
        table = Table(title=f"{len(found):,} watched person(s)")
        table.add_column("person", no_wrap=True, min_width=9)
        for col in ("package", "case", "force", "manager", "CPORT", "on watch"):
            table.add_column(col)
        for w in found:
            sub = w.subject
            table.add_row(*(_t(x) for x in (
                sub.person_ref, sub.package_ref, sub.case_status, sub.force_code, sub.manager,
                "not assessed" if w.cport is None else w.cport.shown(),
                "yes" if sub.on_watch else f"no ({sub.off_reason})")))
        console.print(table)
    console.file.write(captured.get())


@app.command("manager")
@user_errors
def manager_cmd(
    person: Annotated[str, typer.Argument(help="Person reference, e.g. PER000123.")],
    force: Annotated[str, typer.Option("--force", help="Force code of the offender manager: alerts go there.")],
    name: Annotated[str | None, typer.Option("--name", help="The offender manager's name.")] = None,
    package: Annotated[str | None, typer.Option("--package", help="The package, where the reference is in several.")]
    = None,
) -> None:
    """Record a watched person's offender manager (force, and name): their alerts are routed there."""
    from ore.watch.alerts import refresh
    from ore.watch.offenders import set_manager

    main = _main()
    ws = main._workspace()
    main._who(ws)
    refresh(_store(ws))
    with main._acting("investigation") as s:
        sub = set_manager(s, person, force, manager=name, package=package)
        msg = f"{person}: alerts now go to {sub.force_code}" + (f" ({sub.manager})" if sub.manager else "")
    console.print(Text(msg))


@app.command("cport")
@user_errors
def cport_cmd(
    person: Annotated[str, typer.Argument(help="Person reference of a convicted person.")],
    young_at_index: Annotated[str, typer.Option("--young-at-index", help="Age 35 or under at the index offence: "
                                                                         "yes, no or unknown.")],
    prior_criminal_history: Annotated[str, typer.Option("--prior-criminal-history",
                                                        help="Any prior criminal history: yes, no or unknown.")],
    contact_sexual_offending: Annotated[str, typer.Option("--contact-sexual-offending",
                                                          help="Any contact sexual offending: yes, no or unknown.")],
    conditional_release_failure: Annotated[str, typer.Option(
        "--conditional-release-failure", help="Any failure on conditional release: yes, no or unknown.")],
    sexual_interest_in_children: Annotated[str, typer.Option(
        "--sexual-interest-in-children", help="An indication of sexual interest in children: yes, no or unknown.")],
    more_boy_content_images: Annotated[str, typer.Option(
        "--more-boy-content-images", help="More boy than girl content in the indecent images: yes, no or unknown.")],
    more_boy_content_other: Annotated[str, typer.Option(
        "--more-boy-content-other", help="More boy than girl content in other child depictions: yes, no or unknown.")],
    note: Annotated[str | None, typer.Option("--note", help="Where the answers come from.")] = None,
    package: Annotated[str | None, typer.Option("--package", help="The package, where the reference is in several.")]
    = None,
) -> None:
    """Record CPORT items for a convicted person (every item answered; at most one unknown gives a score)."""
    from ore.watch.alerts import refresh
    from ore.watch.cport import published_context
    from ore.watch.offenders import record_cport

    items = {"young_at_index": young_at_index, "prior_criminal_history": prior_criminal_history,
             "contact_sexual_offending": contact_sexual_offending,
             "conditional_release_failure": conditional_release_failure,
             "sexual_interest_in_children": sexual_interest_in_children,
             "more_boy_content_images": more_boy_content_images, "more_boy_content_other": more_boy_content_other}
    for code, answer in items.items():
        if answer.strip().lower() not in ANSWER:
            raise OreError(f"--{code.replace('_', '-')} {answer!r}: yes, no or unknown")
    main = _main()
    ws = main._workspace()
    main._who(ws)
    refresh(_store(ws))
    with main._acting("investigation") as s:
        result = record_cport(s, person, items, note=note, package=package)
    console.print(Text(f"{person}: CPORT {result.shown()}"))
    for line in published_context(result):
        console.print(Text(line), soft_wrap=True)


@app.command("flag")
@user_errors
def flag_cmd(
    kind: Annotated[str, typer.Argument(help="merchant or product.")],
    value: Annotated[str, typer.Argument(help="The billing descriptor or product code, as seen.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is flagged.")],
) -> None:
    """Flag a merchant or product: purchases from it by anyone become new leads."""
    from ore.watch import access
    from ore.watch.watchlist import flag

    main = _main()
    with main._acting("investigation") as s:
        access.require(main.State.principal, "flag", "flag merchants or products")
        f = flag(s, kind, value, by=main.State.principal.username, reason=reason)
        msg = f"Flagged {f.kind} {f.shown!r} (matched as {f.value!r})."
    console.print(Text(msg))


@app.command("unflag")
@user_errors
def unflag_cmd(
    kind: Annotated[str, typer.Argument(help="merchant or product.")],
    value: Annotated[str, typer.Argument(help="The flagged descriptor or product code.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is no longer flagged.")],
) -> None:
    """Remove a flag (a package's flag removed here is not re-added by later screens)."""
    from ore.watch import access
    from ore.watch.watchlist import unflag

    main = _main()
    with main._acting("investigation") as s:
        access.require(main.State.principal, "flag", "remove flags")
        f = unflag(s, kind, value, by=main.State.principal.username, reason=reason)
        msg = f"Removed the flag on {f.kind} {f.shown!r}."
    console.print(Text(msg))


@app.command("flags")
@user_errors
def flags_cmd(
    removed: Annotated[bool, typer.Option("--removed", help="Include removed flags.")] = False,
) -> None:
    """List flagged merchants and products, with where each flag came from."""
    from ore.watch.watchlist import flags

    with _main()._acting("investigation") as s:
        found = flags(s, removed=removed)
        table = Table(title=f"{len(found):,} flag(s)")
        for col in ("kind", "as seen", "matched as", "source", "reason", "added", "removed"):
            table.add_column(col)
        for f in found:
            table.add_row(*(_t(x) for x in (f.kind, f.shown, f.value, f.package_ref or f.source, f.reason,
                                            f.added_at, f.removed_reason)))
    console.print(table)
