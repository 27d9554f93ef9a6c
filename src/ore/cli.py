"""The ``ore`` command: one Typer app whose commands call the pipeline stages.

Commands print for people (Rich tables, progress bars on long work) and exit
non-zero with one clear message on an error a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ore import __version__
from ore.config import get_settings
from ore.errors import OreError
from ore.refusals import refusing
from ore.workspace import Workspace

app = typer.Typer(
    name="ore",
    help="Triage bulk payment-record leads: ingest, resolve, corroborate, prioritise, allocate, track.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
reference_app = typer.Typer(help="Reference holdings: register, convictions, employment, households, ...",
                            no_args_is_help=True)
app.add_typer(reference_app, name="reference")
cases_app = typer.Typer(help="Cases: import a triage, move people through the lifecycle, deadlines, safeguarding.",
                        no_args_is_help=True)
app.add_typer(cases_app, name="cases")
report_app = typer.Typer(help="Reports over the case store: the funnel.", no_args_is_help=True)
app.add_typer(report_app, name="report")
package_app = typer.Typer(help="Signed dissemination packages: check one received, print the signing key.",
                          no_args_is_help=True)
app.add_typer(package_app, name="package")
export_app = typer.Typer(help="Exports of an operation: FollowTheMoney entities for Aleph.", no_args_is_help=True)
app.add_typer(export_app, name="export")

console = Console()
err_console = Console(stderr=True)
PROGRESS_MIN_ROWS = 5_000


class State:
    workspace: Path | None = None
    user: str | None = None
    purpose: str | None = None
    principal: Any = None  # the signed-in user of this command, once known


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        from ore.ops.doctor import version_text

        console.print(Text(version_text(ctx.params.get("workspace"))))
        raise typer.Exit()


@app.callback()
def main(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="ORE_WORKSPACE", is_eager=True,
                     help="Workspace directory [default: ./ore-workspace]"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", envvar="ORE_USER",
                     help="Sign in as this user for this command (password from ORE_PASSWORD, else asked).")
    ] = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Purpose code recorded in the audit log [default: per command].")
    ] = None,
) -> None:
    """ore keeps its state in a workspace directory: DuckDB bulk tables, the case store, the card-token key.

    Who you are: `ore login` (a session for 30 minutes idle, 12 hours at most), or --user /
    ORE_USER with ORE_PASSWORD, or an API token in ORE_TOKEN for scripts.
    """
    State.workspace = workspace
    State.user = user
    State.purpose = purpose
    State.principal = None
    from ore.ops.logs import configure_logging

    configure_logging()  # ORE_LOG_LEVEL, ORE_LOG_FORMAT, ORE_LOG_FILE; personal data redacted


def _workspace() -> Workspace:
    return Workspace.open(State.workspace, get_settings())


def _workspace_root() -> Path:
    """The workspace directory as given, without creating it (for naming the disk it is on)."""
    try:
        return Path(State.workspace or get_settings().workspace).expanduser().resolve()
    except Exception:  # noqa: BLE001 - asked while reporting another error: never mask it
        return Path.cwd()


# an OreError, or a full disk, is a red line, exit 2 and an audit entry, not a traceback
user_errors = refusing(lambda: _log_refusal, err_console, where=_workspace_root)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress callback for stages; the bar appears only for files of more than a few thousand rows."""
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(label: str, done: int, total: int | None) -> None:
        if (total or done) < PROGRESS_MIN_ROWS:
            return
        if label not in tasks:
            if not bar.live.is_started:
                bar.start()
            tasks[label] = bar.add_task(label, total=total)
        bar.update(tasks[label], completed=done)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def _file_table(title: str, reports: list[Any]) -> Table:
    table = Table(title=title)
    for col in ("file", "rows read", "accepted", "quarantined", "warnings"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for r in reports:
        table.add_row(Text(r.file), f"{r.rows_read:,}", f"{r.accepted:,}", f"{r.quarantined:,}", f"{r.warnings:,}")
    return table



@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless behind TLS).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    reference: Annotated[
        Path | None, typer.Option("--reference", "-r", help="Reference holdings for web imports.")
    ] = None,
    postcodes: Annotated[Path | None, typer.Option("--postcodes", help="ONS postcode lookup for web imports.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key (PEM).")] = None,
) -> None:
    """Serve the web application (pages and /api/v1) on the workspace (docs/web.md)."""
    from ore.web.cli import run

    run(State.workspace, host=host, port=port, reference=reference, postcodes=postcodes,
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)

@app.command()
@user_errors
def ingest(
    package: Annotated[
        Path | None, typer.Argument(help="Package directory, .zip, or a bare CSV/XLSX export (with --package-id).")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="YAML column mapping for a foreign export.")
    ] = None,
    package_id: Annotated[
        str | None, typer.Option("--package-id", help="Package id for a bare export that has no manifest.")
    ] = None,
    suggest_mapping: Annotated[
        Path | None,
        typer.Option("--suggest-mapping", help="Propose a mapping for an unknown CSV/XLSX and print it (writes nothing)."),
    ] = None,
) -> None:
    """Ingest a lead package: check the manifest, accept or quarantine every row, tokenise card numbers."""
    from ore.ingest import ingest as run_ingest

    if suggest_mapping is not None:
        from ore.ingest.mapping import suggest

        console.print(suggest(suggest_mapping), markup=False, highlight=False, soft_wrap=True)
        return
    if package is None:
        raise OreError("give a PACKAGE to ingest, or --suggest-mapping FILE")
    mapper, mapping_text = _load_mapping(mapping)
    ws = _workspace()
    with progress_bar() as progress:
        report = run_ingest(ws, package, mapping=mapper, mapping_text=mapping_text, package_id=package_id,
                            progress=progress)
    # A run killed between ingest's commit and its audit entry kept the rows without the entry: the
    # next run of the same package, finding it already ingested, writes the entry that is missing.
    if report.status != "already ingested" or not _ingest_logged(ws, report.package_id):
        status = report.status if report.status != "already ingested" else "ingested by an earlier run, logged now"
        _audit_bulk(ws, action="ingest", category="collection", objects=[report.package_id], purpose="triage",
                    detail={"status": status, "accepted": sum(f.accepted for f in report.files),
                            "quarantined": sum(f.quarantined for f in report.files)})
    if report.status == "already ingested":
        console.print(f"Package [bold]{report.package_id}[/] was already ingested with the same content: nothing to do"
                      + (f", but a key rotation is in progress: read again to pair {report.paired:,} card tokens "
                         "with the new key (`ore keys status`)." if report.paired else "."))
    console.print(_file_table(f"Package {report.package_id}: {report.status}", report.files))
    for f in report.files:
        console.print(f"{f.file}: {f.rows_read:,} rows read = {f.accepted:,} accepted + {f.quarantined:,} quarantined")
    if any(f.quarantined for f in report.files):
        console.print("See the reasons with [bold]ore quarantine[/].")


@app.command()
@user_errors
def quarantine(
    package_id: Annotated[str | None, typer.Option("--package-id", help="Only this package.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the rows to this CSV file instead.")] = None,
) -> None:
    """List quarantined rows: file, line, record id and reason (card numbers masked)."""
    from ore.ingest.quarantine import quarantined_rows, write_quarantine_csv

    ws = _workspace()
    rows = quarantined_rows(ws, package_id)
    # rejected rows are personal data too: looking at them (or writing them out) is logged
    _audit_bulk(ws, action="quarantine.view" if out is None else "quarantine.export", category="consultation",
                objects=[package_id or "*"], purpose="triage", detail={"rows": len(rows)})
    if out is not None:
        write_quarantine_csv(rows, out)
        console.print(f"{len(rows):,} quarantined rows written to {out}")
        return
    table = Table(title=f"{len(rows):,} quarantined rows")
    for col in ("file", "line", "record_id", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(Text(str(v)) for v in (r["file"], r["line"], r["record_id"] or "", r["reason"])))
    console.print(table)


@reference_app.command("load")
@user_errors
def reference_load(
    directory: Annotated[Path, typer.Argument(help="Directory of holdings CSV files (see spec/reference-data.md).")],
) -> None:
    """Load reference holdings; each file replaces its previous load, unchanged files are skipped."""
    from ore.ingest import load_reference

    ws = _workspace()
    with progress_bar() as progress:
        reports = load_reference(ws, directory, progress=progress)
    _audit_bulk(ws, action="reference.load", category="collection", objects=[r.file for r in reports],
                purpose="triage", detail={"directory": directory.name,
                                          "accepted": sum(r.accepted for r in reports),
                                          "quarantined": sum(r.quarantined for r in reports)})
    console.print(_file_table("Reference holdings", reports))


def _load_mapping(mapping: Path | None) -> tuple[Any, str | None]:
    if mapping is None:
        return None, None
    from ore.ingest.mapping import load_mapping

    return load_mapping(mapping), mapping.read_text(encoding="utf-8")


def _triage_table(summary: Any) -> Table:
    table = Table(title=f"Triage of {summary.package_id}")
    table.add_column("band")
    table.add_column("persons", justify="right")
    for band in ("P1", "P2", "P3", "P4", "none"):
        table.add_row(band, f"{summary.bands.get(band, 0):,}")
    return table


def _scores_table(title: str, scores: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in scores.items():
        table.add_row(k, "" if v is None else f"{v:.4f}")
    return table


@app.command()
@user_errors
def triage(
    package: Annotated[Path, typer.Argument(help="Package directory or .zip (ingested first if new).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for records.csv, persons.csv, quarantine.csv, report.html.")],
    reference: Annotated[
        Path | None, typer.Option("--reference", "-r", help="Directory of reference holdings to load first.")
    ] = None,
    postcodes: Annotated[
        Path | None, typer.Option("--postcodes", help="ONS National Statistics Postcode Lookup CSV (pcds, pfa).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Priority policy YAML [default: shipped].")] = None,
    fraud_policy: Annotated[
        Path | None, typer.Option("--fraud-policy", help="Evidence indicator weights YAML [default: shipped].")
    ] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", "-m", help="YAML column mapping for a foreign export.")] = None,
    package_id: Annotated[str | None, typer.Option("--package-id", help="Package id for a bare export.")] = None,
    commit: Annotated[
        bool, typer.Option("--commit", help="Then import the run into the case store (as ore cases import OUTDIR).")
    ] = False,
    engine: Annotated[
        str, typer.Option("--engine", help="Where the bulk work runs: duckdb, or spark (Splink's Spark backend and "
                                           "Spark SQL; pip install 'ore[spark]'; ORE_SPARK_MASTER, local by default).")
    ] = "duckdb",
) -> None:
    """Resolve, corroborate, prioritise and allocate a package; write the triage output and report."""
    from ore.pipeline import triage as run_triage

    mapper, mapping_text = _load_mapping(mapping)
    ws = _workspace()
    if commit:
        _who(ws).require("cases.import", "commit a triage")  # before the long run, not after it
    with progress_bar() as progress, console.status("triage") as status:
        summary = run_triage(
            ws, package, out, reference=reference, postcodes=postcodes, mapping=mapper, mapping_text=mapping_text,
            package_id=package_id, policy=policy, fraud_policy=fraud_policy, progress=progress,
            step=lambda name: status.update(f"triage: {name}"), engine=engine,
        )
    console.print(_file_table(f"Package {summary.package_id}: {summary.ingest.status}", summary.ingest.files))
    console.print(_triage_table(summary))
    alloc = summary.allocation
    console.print(f"Allocated to a force: {alloc.get('allocated', 0):,}; unallocated queue: {alloc.get('unallocated', 0):,}")
    console.print("Stage times (s): " + ", ".join(f"{k} {v}" for k, v in summary.seconds.items()))
    console.print(f"Output written to [bold]{out}[/] (records.csv, persons.csv, quarantine.csv, report.html).")
    _audit_bulk(ws, action="triage", category="combination", objects=[summary.package_id], purpose="triage",
                detail={"bands": summary.bands, "allocation": summary.allocation, "out": str(out)})
    if commit:
        _commit_triage(ws, out, summary.package_id)


@app.command()
@user_errors
def evaluate(
    scenario: Annotated[Path, typer.Argument(help="Scenario directory with truth/ (from ore synth).")],
    out: Annotated[Path, typer.Argument(help="Triage output directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a triage output against a scenario's ground truth."""
    import json

    from ore.evaluate import evaluate as run_evaluate

    scores = run_evaluate(scenario, out)
    if as_json:
        console.print_json(json.dumps(scores))
        return
    console.print(_scores_table(f"Scores of {out} against {scenario}", scores))


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the demo scenario, workspace and output.")] = Path(
        "demo-out"
    ),
    people: Annotated[int, typer.Option(help="People in the synthetic population.")] = 20_000,
    subscribers: Annotated[int, typer.Option(help="Genuine subscribers among them.")] = 1_500,
    seed: Annotated[int, typer.Option(help="Random seed of the scenario.")] = 7,
) -> None:
    """Generate a synthetic scenario, triage it on the embedded defaults, score it and write the report."""
    import shutil

    from ore.evaluate import evaluate as run_evaluate
    from ore.pipeline import triage as run_triage
    from ore.synth import generate

    scenario, result, workspace = out / "scenario", out / "triage", out / "workspace"
    for path in (scenario, result, workspace):
        shutil.rmtree(path, ignore_errors=True)  # a demo starts clean every time
    with console.status(f"Generating a synthetic scenario of {people:,} people (seed {seed})"):
        generate(scenario, people=people, subscribers=subscribers, seed=seed)
    ws = Workspace.open(workspace, get_settings())
    with progress_bar() as progress, console.status("triage") as status:
        summary = run_triage(ws, scenario / "package", result, reference=scenario / "reference", progress=progress,
                             step=lambda name: status.update(f"triage: {name}"))
    console.print(_file_table(f"Package {summary.package_id}: {summary.ingest.status}", summary.ingest.files))
    console.print(_triage_table(summary))
    console.print(_scores_table("Scores against the scenario's ground truth", run_evaluate(scenario, result)))
    console.print(f"Report: [bold]{result / 'report.html'}[/]; work list: {result / 'persons.csv'}")


@app.command()
@user_errors
def synth(
    outdir: Annotated[Path, typer.Argument(help="Directory to write package/, reference/ and truth/ into.")],
    people: Annotated[int, typer.Option("--people", min=1, help="People in the invented population.")] = 20_000,
    subscribers: Annotated[int, typer.Option("--subscribers", min=1, help="Genuine abuse subscribers.")] = 1_500,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed: the same seed writes the same bytes.")] = 1,
    difficulty: Annotated[
        str, typer.Option("--difficulty", help="Preset of noise and fraud: easy, standard or hard.")
    ] = "standard",
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty OUTDIR (replacing its package/reference/truth).")
    ] = False,
) -> None:
    """Generate a synthetic scenario with ground truth: a lead package, reference holdings and truth files."""
    import shutil

    from ore.synth import generate
    from ore.synth.generate import check_arguments

    try:
        check_arguments(people, subscribers, difficulty)
    except ValueError as e:
        raise OreError(str(e)) from None
    if outdir.exists() and not outdir.is_dir():
        raise OreError(f"{outdir} exists and is not a directory")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not force:
            raise OreError(f"{outdir} is not empty; give --force to write into it")
        for sub in ("package", "reference", "truth"):
            if (outdir / sub).is_dir():
                shutil.rmtree(outdir / sub)
    with progress_bar() as progress:
        try:
            summary = generate(outdir, people=people, subscribers=subscribers, seed=seed, difficulty=difficulty,
                               progress=progress)
        except ValueError as e:
            raise OreError(str(e)) from None
    table = Table(title=f"Scenario {summary.package_id} ({summary.difficulty}, seed {summary.seed})")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("people", summary.people), ("households", summary.households), ("subscribers", summary.subscribers),
        ("adult-only buyers", summary.adult_only), ("card-fraud victims", summary.victims),
        ("fraud actors", summary.actors), ("lead records", summary.records), ("  genuine", summary.genuine),
        ("  stolen", summary.stolen), ("  malformed", summary.malformed), ("visits", summary.visits),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    console.print(f"Written to {outdir} in {summary.seconds:.1f} s: package/, reference/, truth/")


# --- cases and reports (issue 4) ---------------------------------------------------------------


def _current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (a container): still record something true
        return "unknown"


def _store() -> Any:
    from ore.store import store_for

    return store_for(_workspace())


# --- who is acting (issue 5) -------------------------------------------------------------------


def _session_file(ws: Workspace) -> Path:
    """Where ``ore login`` keeps this OS account's session secret for the workspace (mode 0600)."""
    return ws.root / "sessions" / f"{_current_user()}.session"


def _first_run(store: Any) -> None:
    """With no user at all, make the first admin and print its one-time password, once."""
    from ore.auth.users import ensure_first_admin

    with store.session() as s:
        first = ensure_first_admin(s)
    if first is not None:
        err_console.print(Text(
            f"First run: created the administrator {first.username!r} with the one-time password\n\n"
            f"    {first.password}\n\nIt is shown only now. Sign in with `ore --user {first.username} passwd` to "
            "choose your own, then add users with `ore users add`."), soft_wrap=True)


def _who(ws: Workspace | None = None, *, allow_must_change: bool = False) -> Any:
    """The signed-in user of this command: ORE_TOKEN, else --user/ORE_USER (+ ORE_PASSWORD), else the session."""
    import os

    from ore.auth.sessions import resume_session, sign_in, token_principal
    from ore.store import store_for

    if State.principal is not None:
        return State.principal
    ws = ws or _workspace()
    store = store_for(ws)
    _first_run(store)
    must = False
    if token := os.environ.get("ORE_TOKEN"):
        who = token_principal(store, token.strip())
    elif State.user:
        password = os.environ.get("ORE_PASSWORD")
        if password is None:
            password = typer.prompt(f"Password for {State.user}", hide_input=True, err=True)
        signed = sign_in(store, State.user, password)
        who, must = signed.principal, signed.must_change_password
    elif (f := _session_file(ws)).exists():
        signed = resume_session(store, f.read_text(encoding="utf-8").strip())
        who, must = signed.principal, signed.must_change_password
    else:
        raise OreError("who are you? Sign in with `ore login`, or give --user (ORE_USER and ORE_PASSWORD), "
                       "or an API token in ORE_TOKEN")
    if must and not allow_must_change:
        raise OreError(f"{who.username} must change the one-time password first: ore --user {who.username} passwd")
    State.principal = who
    return who


def _has_credentials(ws: Workspace) -> bool:
    import os

    return bool(os.environ.get("ORE_TOKEN") or State.user or _session_file(ws).exists())


def _purpose(default: str) -> str:
    from ore.auth.policy import load_policy

    purpose = State.purpose or default
    if purpose not in load_policy().purposes:
        raise OreError(f"--purpose {purpose!r} is not a purpose code; one of: {', '.join(load_policy().purposes)}")
    return purpose


@contextmanager
def _acting(default_purpose: str, permission: str | None = None, what: str = "") -> Iterator[Any]:
    """A store session for the signed-in user, with the purpose recorded in every audit entry."""
    ws = _workspace()
    who = _who(ws)
    if permission:
        who.require(permission, what)
    from ore.store import store_for

    with store_for(ws).session(who) as s:
        s.info["purpose"] = _purpose(default_purpose)
        yield s


def _audit_bulk(ws: Workspace, *, action: str, category: str, objects: list[str], purpose: str,
                detail: dict[str, Any]) -> None:
    """Log a command on the bulk (DuckDB) tables: by the signed-in user, else by the OS account.

    Ingest, reference loading and triage run on the operator's workspace and do not yet
    require a case-store user (other teams' scripts and tests call them bare): the entry
    then names the OS account and says that no one signed in.
    """
    from ore.audit import record
    from ore.store import store_for

    who = _who(ws) if _has_credentials(ws) else None
    user = who.username if who is not None else f"os:{_current_user()}"
    with store_for(ws).session(who) as s:
        record(s, user=user, action=action, category=category, objects=objects, purpose=_purpose(purpose),
               detail={**detail, "signed_in": who is not None})


def _ingest_logged(ws: Workspace, package_id: str) -> bool:
    """Whether the audit log holds the collection of this package by ``ore ingest``."""
    import json

    from sqlalchemy import select

    from ore.store import store_for
    from ore.store.access import AuditEntry

    with store_for(ws).session() as s:
        return s.scalar(select(AuditEntry.seq).where(
            AuditEntry.action == "ingest", AuditEntry.objects == json.dumps([package_id], ensure_ascii=False)
        ).limit(1)) is not None


def _log_refusal(command: str, error: Exception) -> None:
    """A refused or failed command of a signed-in user is an audit entry too (in its own transaction)."""
    who = State.principal
    if who is None:
        return
    try:
        from ore.audit import record

        with _store().session() as s:
            record(s, user=who.username, action=f"cli.{command}", category="access",
                   purpose=State.purpose or "administration", outcome=f"refused: {error}"[:2000])
    except Exception:  # noqa: BLE001 - the refusal is reported to the user whatever happens here
        pass


def _commit_triage(ws: Workspace, out: Path, package_id: str | None) -> None:
    from ore.cases import import_triage
    from ore.store import store_for

    result = import_triage(store_for(ws), ws, out, package_id=package_id, principal=_who(ws),
                           purpose=_purpose("triage"))
    counts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in result.as_dict()["counts"].items())
    if result.status == "unchanged":
        console.print(Text(f"Case store: {result.package_id} already holds this triage; nothing changed."),
                      soft_wrap=True)
    else:
        console.print(Text(f"Case store: {result.package_id} {result.status} ({counts})."), soft_wrap=True)


def _when(value: str | None) -> Any:
    """An ISO time given on the command line (UTC unless it names a zone), or None for now."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise OreError(f"--at {value!r} is not an ISO time such as 2004-04-01T09:30") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _day(value: str | None, option: str) -> Any:
    if value is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise OreError(f"{option} {value!r} is not a date such as 2004-04-01") from None


def _print_rows(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """A table of plain values (shown as typed: no markup from data)."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(_t(v) for v in r))
    console.print(table)


def _t(value: Any) -> Text:
    if value is None:
        return Text("")
    if hasattr(value, "isoformat"):
        return Text(value.isoformat(timespec="minutes") if hasattr(value, "hour") else value.isoformat())
    return Text(str(value))


@cases_app.command("import")
@user_errors
def cases_import(
    outdir: Annotated[Path, typer.Argument(help="Triage output directory (records.csv, persons.csv).")],
    package_id: Annotated[
        str | None, typer.Option("--package-id", help="The package, where the OUTDIR's records match several.")
    ] = None,
) -> None:
    """Commit a triage run to the case store; re-importing changes nothing, a re-triage updates with history."""
    _commit_triage(_workspace(), outdir, package_id)


@cases_app.command("list")
@user_errors
def cases_list(
    band: Annotated[str | None, typer.Option("--band", help="P1..P4 or none (confirmed band, else recommended).")] = None,
    force: Annotated[str | None, typer.Option("--force", help="Force code (disseminated to, else allocated).")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Lifecycle status, e.g. disseminated.")] = None,
    package: Annotated[str | None, typer.Option("--package", help="Only this package.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
) -> None:
    """List cases with their band, force, status and s.38 category."""
    from ore.cases import STATES, list_cases
    from ore.cases.lifecycle import BANDS

    if band is not None and band not in BANDS:
        raise OreError(f"--band {band!r} is not a band; one of: {', '.join(BANDS)}")
    if status is not None and status not in STATES:
        raise OreError(f"--status {status!r} is not a status; one of: {', '.join(STATES)}")
    with _acting("investigation", "cases.read", "list cases") as s:
        cases = list_cases(s, band=band, force=force, status=status, package=package, limit=limit + 1)
        table = Table(title=f"{min(len(cases), limit):,} case(s)" + (" (more: raise --limit)" if len(cases) > limit else ""))
        table.add_column("person", no_wrap=True, min_width=9)  # a reference is never cut short
        for col in ("package", "name", "band", "confirmed", "force", "status", "s.38", "grade", "due"):
            table.add_column(col)
        for c in cases[:limit]:
            p = c.person
            table.add_row(*(_t(v) for v in (
                p.person_ref, p.package.package_ref, p.display_name, c.band or c.recommended_band,
                "yes" if c.band_confirmed else "no", c.force_code or p.force_code, c.status + (" (sealed)" if c.sealed else ""),
                c.s38_category, p.evidence_grade, c.due_at)))
    console.print(table)


@cases_app.command("show")
@user_errors
def cases_show(
    person: Annotated[str, typer.Argument(help="Person reference from the triage, e.g. PER000123.")],
    package: Annotated[str | None, typer.Option("--package", help="The package, where the reference is in several.")] = None,
) -> None:
    """Show a case: the person, the band and its reasons, every step taken, holdings, records, safeguarding."""
    import json

    from ore.cases import show_case

    # Printed only after the transaction (and its audit entry) commits: no view without its log entry.
    with _acting("investigation", "cases.read", "show cases") as s, console.capture() as captured:
        v = show_case(s, person, package)
        facts = Table(title=f"Case of {person}", show_header=False)
        facts.add_column("field")
        facts.add_column("value")
        for k, val in v.as_dict().items():
            facts.add_row(k, _t(val))
        console.print(facts)
        if v.recommendations:
            rec = v.recommendations[-1]
            console.print(Text(f"Recommended band {rec.band} ({rec.recorded_at.isoformat(timespec='minutes')}):"))
            for sentence in json.loads(rec.sentences or "[]"):
                console.print(Text(f"  - {sentence}"))
            if len(v.recommendations) > 1:
                earlier = ", ".join(f"{r.band} at {r.recorded_at.isoformat(timespec='minutes')}" for r in v.recommendations[:-1])
                console.print(Text(f"  earlier recommendations: {earlier}"))
        steps = Table(title="Steps")
        for col in ("#", "at (UTC)", "step", "by", "reason", "detail"):
            steps.add_column(col)
        for t in v.transitions:
            detail = "; ".join(x for x in (
                f"band {t.band}" if t.band else "", f"force {t.force_code}" if t.force_code else "",
                f"override of {t.overridden_rule} by {t.override_by}: {t.override_reason}" if t.overridden_rule else "",
                f"s.38 {t.category_before} -> {t.category_after}" if t.category_before != t.category_after else "",
            ) if x)
            step = t.to_status if t.action == "transition" else t.action
            steps.add_row(*(_t(x) for x in (t.seq, t.at, f"{t.from_status} -> {step}" if t.action == "transition" else step,
                                            t.actor, t.reason, detail)))
        console.print(steps)
        if v.links:
            links = Table(title="Holdings links")
            for col in ("holding", "ref", "probability", "detail"):
                links.add_column(col)
            for link in v.links:
                links.add_row(_t(link.holding), _t(link.ref), f"{link.match_probability:.3f}", _t(link.detail))
            console.print(links)
        records = Table(title=f"{len(v.records)} record(s)")
        for col in ("record", "time", "product", "card", "fraud suspected", "indicators"):
            records.add_column(col)
        for r in v.records:
            codes = ";".join(i["code"] for i in json.loads(r.indicators or "[]"))
            records.add_row(*(_t(x) for x in (r.record_ref, r.transaction_time, r.product, r.card_masked,
                                              "yes" if r.fraud_suspected else "no", codes)))
        console.print(records)
        for g in v.safeguarding:
            console.print(Text(f"Safeguarding: {g.children_identified} child(ren) identified, {g.children_safeguarded} "
                               f"safeguarded by {g.agency} (recorded by {g.recorded_by}, {g.recorded_at:%Y-%m-%d})"))
    console.file.write(captured.get())


@cases_app.command("transition")
@user_errors
def cases_transition(
    person: Annotated[str, typer.Argument(help="Person reference from the triage, e.g. PER000123.")],
    state: Annotated[str, typer.Argument(help="Status to move to (see ore cases rules).")],
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded with the step.")],
    band: Annotated[str | None, typer.Option("--band", help="triaged: the band confirmed or set (P1..P4, none).")] = None,
    force: Annotated[
        str | None, typer.Option("--force", help="disseminated: receiving force code [default: allocated force].")
    ] = None,
    override_by: Annotated[
        str | None, typer.Option("--override-by", help="Supervisor authorising an arrest on evidence grade C.")
    ] = None,
    override_reason: Annotated[
        str | None, typer.Option("--override-reason", help="The supervisor's reason for the override.")
    ] = None,
    ground: Annotated[
        str | None, typer.Option("--ground", help="eliminated: card_fraud_victim (default), identity_misused, witness.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="When it happened (ISO, UTC) [default: now].")] = None,
    package: Annotated[str | None, typer.Option("--package", help="The package, where the reference is in several.")] = None,
    approval: Annotated[
        int | None, typer.Option("--approval", help="disseminated to another force: the second person's approval id.")
    ] = None,
) -> None:
    """Move a case one step along its lifecycle (as the signed-in user); a rule that forbids it is named."""
    from ore.cases import STATES, find_case, transition
    from ore.cases.disseminate import approve_step

    if state not in STATES:
        raise OreError(f"{state!r} is not a status; one of: {', '.join(STATES)}")
    with _acting("investigation") as s:
        case = find_case(s, person, package)
        before = case.status
        approve_step(s, case, state, force, approval)  # the two-person rule, as for a package
        transition(s, case, state, by=State.principal.username, reason=reason, at=_when(at), band=band, force=force,
                   override_by=override_by, override_reason=override_reason, ground=ground)
        msg = f"{person}: {before} -> {case.status} (s.38 category {case.s38_category})"
        if case.status == "disseminated" and case.due_at:
            msg += f"; due by {case.due_at.isoformat(timespec='minutes')}"
    console.print(Text(msg), soft_wrap=True)


@cases_app.command("seal")
@user_errors
def cases_seal(
    person: Annotated[str, typer.Argument(help="Person reference.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    package: Annotated[str | None, typer.Option("--package", help="The package, where needed.")] = None,
) -> None:
    """Seal a person: no step until unsealed; seen only by auditors and admins (counts stay)."""
    from ore.cases import find_case, seal

    with _acting("supervision") as s:
        seal(s, find_case(s, person, package), by=State.principal.username, reason=reason)
    console.print(Text(f"{person} sealed."))


@cases_app.command("unseal")
@user_errors
def cases_unseal(
    person: Annotated[str, typer.Argument(help="Person reference.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    package: Annotated[str | None, typer.Option("--package", help="The package, where needed.")] = None,
    approval: Annotated[int | None, typer.Option("--approval", help="The second person's approval id.")] = None,
) -> None:
    """Unseal a person: needs a second person's approval (two-person rule)."""
    from ore.auth import approvals
    from ore.cases import find_case, unseal

    with _acting("supervision") as s:
        case = find_case(s, person, package)
        State.principal.require("cases.unseal", "unseal")
        approvals.use(s, State.principal, "unseal", person, approval)
        unseal(s, case, by=State.principal.username, reason=reason)
    console.print(Text(f"{person} unsealed."))


@cases_app.command("safeguard")
@user_errors
def cases_safeguard(
    person: Annotated[str, typer.Argument(help="Person reference.")],
    identified: Annotated[int, typer.Option("--identified", min=0, help="Children identified.")],
    safeguarded: Annotated[int, typer.Option("--safeguarded", min=0, help="Children safeguarded.")],
    agency: Annotated[str, typer.Option("--agency", help="Agency that safeguarded them.")],
    identified_on: Annotated[str | None, typer.Option("--identified-on", help="Date (YYYY-MM-DD).")] = None,
    safeguarded_on: Annotated[str | None, typer.Option("--safeguarded-on", help="Date (YYYY-MM-DD).")] = None,
    package: Annotated[str | None, typer.Option("--package", help="The package, where needed.")] = None,
) -> None:
    """Record children identified and safeguarded in a case (counts, dates, agency; no names)."""
    from ore.cases import find_case, record_safeguarding

    with _acting("safeguarding") as s:
        record_safeguarding(s, find_case(s, person, package), identified=identified, safeguarded=safeguarded,
                            agency=agency, by=State.principal.username, identified_on=_day(identified_on, "--identified-on"),
                            safeguarded_on=_day(safeguarded_on, "--safeguarded-on"))
    console.print(Text(f"{person}: {identified} child(ren) identified, {safeguarded} safeguarded ({agency})."))


@cases_app.command("overdue")
@user_errors
def cases_overdue(
    force: Annotated[str | None, typer.Option("--force", help="Only this force.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="As at this time (ISO, UTC) [default: now].")] = None,
) -> None:
    """Disseminated cases past their band's deadline with no action yet (P1 24 h, P2 7 d, P3 14 d, P4 30 d)."""
    from ore.cases import overdue

    with _acting("investigation", "cases.read", "list overdue cases") as s:
        rows = overdue(s, now=_when(at), force=force)
    table = Table(title=f"{len(rows):,} overdue case(s)")
    table.add_column("person", no_wrap=True, min_width=9)
    for col in ("name", "band", "force", "status", "disseminated", "due", "overdue by"):
        table.add_column(col)
    for r in rows:
        late = f"{r.overdue_by.days} d {r.overdue_by.seconds // 3600} h"
        table.add_row(*(_t(v) for v in (r.person_ref, r.display_name, r.band, r.force_code, r.status,
                                        r.disseminated_at, r.due_at, late)))
    console.print(table)


@cases_app.command("rules")
def cases_rules() -> None:
    """The lifecycle: each status, the steps allowed from it, and the rules that can refuse a step."""
    from ore.cases.lifecycle import RULES, STEPS, TRANSITIONS

    table = Table(title="Lifecycle")
    for col in ("status", "meaning", "may go to", "rules"):
        table.add_column(col)
    for state, step in STEPS.items():
        table.add_row(state, step.sentence, ", ".join(TRANSITIONS[state]) or "(final)", ", ".join(step.rules))
    console.print(table)
    rules = Table(title="Rules")
    rules.add_column("rule")
    rules.add_column("sentence")
    for r in RULES.values():
        rules.add_row(r.code, Text(r.sentence))
    console.print(rules)


@report_app.command("funnel")
@user_errors
def report_funnel(
    by: Annotated[str | None, typer.Option("--by", help="Break down by force or band.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or html.")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of the terminal.")] = None,
    operation: Annotated[str | None, typer.Option("--operation", help="Only this operation.")] = None,
) -> None:
    """The funnel: identified, arrested, charged, convicted, cautioned, NFA, eliminated, children safeguarded."""
    from ore.cases import funnel
    from ore.cases.funnel import COLUMNS, GROUPINGS
    from ore.report.funnel import LABELS, funnel_csv, funnel_html, human

    if by is not None and by not in GROUPINGS:
        raise OreError(f"--by {by!r}: use one of {', '.join(GROUPINGS)}")
    if fmt not in ("table", "csv", "html"):
        raise OreError(f"--format {fmt!r}: use table, csv or html")
    with _acting("reporting", "report.read", "report the funnel") as s:
        f = funnel(s, by=by, operation=operation)
    if fmt in ("csv", "html"):
        text = funnel_csv(f) if fmt == "csv" else funnel_html(f)
        if out is None:
            console.file.write(text)
        else:
            out.write_text(text, encoding="utf-8")
            console.print(Text(f"Funnel written to {out}"))
        return
    rows = [*f.rows, f.total] if by else [f.total]
    table = Table(title="Funnel" + (f" by {by}" if by else ""))
    if by == "force":  # up to 45 forces: one row each, stages across
        table.add_column("force")
        for col in COLUMNS:
            table.add_column(col.replace("_", " "), justify="right")
        for row in rows:
            table.add_row(Text(row.group), *(f"{row.counts[c]:,}" for c in COLUMNS))
    else:  # stages down, a column per band (or one for the operation)
        table.add_column("stage")
        for row in rows:
            table.add_column(Text(row.group), justify="right")
        for col in COLUMNS:
            table.add_row(LABELS[col], *(f"{row.counts[col]:,}" for row in rows))
    console.print(table)
    med = Table(title="Median time from dissemination to first action")
    for col in ("band", "cases acted on", "median"):
        med.add_column(col)
    for b, d in sorted(f.median_to_first_action.items()):
        med.add_row(b, f"{f.acted.get(b, 0):,}", human(d))
    console.print(med)
    for problem in f.inconsistencies():
        err_console.print(Text(f"warning: {problem}"))



# --- dissemination and exports (issue 4) -----------------------------------------------------


@app.command()
@user_errors
def disseminate(
    force: Annotated[str, typer.Option("--force", help="Receiving force code, e.g. MPS.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the package .zip and its .pub key.")],
    operation: Annotated[str | None, typer.Option("--operation", help="The operation, where the store holds several.")] = None,
    package: Annotated[str | None, typer.Option("--package", help="Only persons of this lead package.")] = None,
    person: Annotated[
        list[str] | None, typer.Option("--person", help="Only these persons (repeat); any held back refuses all.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why: recorded with each step.")] = None,
    approval: Annotated[
        int | None, typer.Option("--approval", help="Second person's approval id (a P1 person, or another force's).")
    ] = None,
) -> None:
    """Disseminate a force's persons whose band is confirmed: a signed zip, each case moved to disseminated."""
    from ore.cases.disseminate import disseminate as run_disseminate
    from ore.store import store_for

    ws = _workspace()
    result = run_disseminate(store_for(ws), ws, force, out=out, operation=operation, package=package,
                             persons=person or None, reason=reason, principal=_who(ws), approval=approval,
                             purpose=_purpose("disclosure"))
    counts = ", ".join(f"{name} {n:,}" for name, n in result.counts.items())
    console.print(Text(f"{len(result.persons):,} person(s) disseminated to {result.force} ({result.operation}): "
                       f"{result.path}"), soft_wrap=True)
    console.print(Text(f"Rows: {counts}"), soft_wrap=True)
    console.print(Text(f"Public key: {result.public_key_path} (fingerprint {result.key_fingerprint})"), soft_wrap=True)
    if result.held:
        console.print(Text(f"{len(result.held):,} person(s) of {result.force} held back:"))
        for ref, rule, _ in result.held[:20]:
            console.print(Text(f"  {ref}: rule {rule}"))
        if len(result.held) > 20:
            console.print(Text(f"  ... and {len(result.held) - 20:,} more"))
    if result.sealed_skipped:
        console.print(Text(f"{result.sealed_skipped:,} sealed person(s) not included."))


@package_app.command("verify")
@user_errors
def package_verify(
    zip_path: Annotated[Path, typer.Argument(help="The package .zip received.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The sender's pinned public key (PEM).")],
) -> None:
    """Check a package: the signature with the pinned key, then every file's sha256 and row count."""
    from ore.report.package_sign import load_public_key, verify_package

    v = verify_package(zip_path, load_public_key(public_key))
    for line in v.checked:
        console.print(Text(f"ok: {line}"), soft_wrap=True)
    if v.ok:
        m = v.manifest or {}
        console.print(Text(f"VERIFIED: {zip_path} (force {m.get('force')}, operation {m.get('operation')}, "
                           f"{m.get('persons')} person(s), created {m.get('created_at')})"), soft_wrap=True)
        return
    for problem in v.problems:
        err_console.print(Text(f"FAILED: {problem}"), soft_wrap=True)
    err_console.print(Text(f"{zip_path}: NOT verified ({len(v.problems)} problem(s)); do not use its contents."),
                      soft_wrap=True)
    raise typer.Exit(1)


@package_app.command("public-key")
@user_errors
def package_public_key(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the PEM to this file.")] = None,
) -> None:
    """Print the workspace's signing public key (PEM) and its fingerprint, for receiving forces to pin."""
    from ore.report.package_sign import fingerprint, public_pem, signing_key

    key = signing_key(_workspace())
    pem = public_pem(key)
    if out is not None:
        out.write_bytes(pem)
    console.file.write(pem.decode("ascii"))
    console.print(Text(f"fingerprint (sha256 of the raw key): {fingerprint(key)}"), soft_wrap=True)


@export_app.command("ftm")
@user_errors
def export_ftm(
    operation: Annotated[str, typer.Option("--operation", help="The operation to export.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON-lines file of FollowTheMoney entities.")],
    recipient: Annotated[str, typer.Option("--recipient", help="Who receives the export (recorded as disclosure).")] = (
        "Aleph (national unit)"),
    approval: Annotated[int | None, typer.Option("--approval", help="Second person's approval id (bulk export).")] = None,
) -> None:
    """Export an operation's non-sealed persons, addresses, accounts and payments as FollowTheMoney entities."""
    from ore.auth import approvals
    from ore.cases.exports import record_export
    from ore.report.ftm import export_ftm as run_export

    ws = _workspace()
    with _acting("disclosure", "cases.export", "export an operation") as s:
        approvals.use(s, State.principal, "bulk_export", operation, approval)
        result = run_export(s, out, operation, ws)
        record_export(s, operation, recipient, str(out), result.counts, approval)
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.counts.items()))
    console.print(Text(f"{sum(result.counts.values()):,} entities written to {out} ({counts})"), soft_wrap=True)


# --- access and audit (issue 5) -----------------------------------------------------------------

users_app = typer.Typer(help="Users: add, disable, give roles, list, unlock (admins).", no_args_is_help=True)
app.add_typer(users_app, name="users")
tokens_app = typer.Typer(help="API tokens for scripts: create (scoped), list, revoke.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
audit_app = typer.Typer(help="The audit log: verify the chain, export a signed checkpoint, search.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")
approvals_app = typer.Typer(help="Two-person rule: ask for, grant and list approvals.", no_args_is_help=True)
app.add_typer(approvals_app, name="approvals")
retention_app = typer.Typer(help="Retention: what is due for review; erasing personal data.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")

from ore.watch.cli import app as watch_app  # noqa: E402 - the re-offending watch (docs/watch.md)

app.add_typer(watch_app, name="watch")


def _new_password(prompt: str) -> str:
    import os

    if (pw := os.environ.get("ORE_NEW_PASSWORD")) is not None:
        return pw
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True)


@app.command()
@user_errors
def login(
    user: Annotated[str | None, typer.Option("--user", "-u", help="User name [default: --user / ORE_USER].")] = None,
) -> None:
    """Sign in and keep a session for this workspace (expires after 30 minutes idle, 12 hours at most)."""
    import os

    from ore.auth.sessions import open_session

    State.user = user or State.user or typer.prompt("User", err=True)
    ws = _workspace()
    who = _who(ws, allow_must_change=True)
    if who.via == "token":
        raise OreError("an API token cannot open a session: give --user")
    secret = open_session(_store(), who)
    path = _session_file(ws)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(secret, encoding="utf-8")
    console.print(Text(f"Signed in as {who.username} ({', '.join(sorted(who.roles))}"
                       + (f", force {who.force}" if who.force else "") + ")."))


@app.command()
@user_errors
def logout() -> None:
    """End this workspace's session."""
    from ore.auth.sessions import end_session

    ws = _workspace()
    path = _session_file(ws)
    if not path.exists():
        console.print("Not signed in.")
        return
    end_session(_store(), path.read_text(encoding="utf-8").strip())
    path.unlink()
    console.print("Signed out.")


@app.command()
@user_errors
def passwd() -> None:
    """Change your password (the first admin's one-time password, or a reset one, must be changed first)."""
    import os

    from ore.auth.sessions import change_password

    if not State.user:
        raise OreError("give your user name: ore --user NAME passwd")
    old = os.environ.get("ORE_PASSWORD")
    if old is None:
        old = typer.prompt("Current password", hide_input=True, err=True)
    new = _new_password("New password")
    change_password(_store(), State.user, old, new)
    console.print(Text(f"Password of {State.user} changed."))


@users_app.command("add")
@user_errors
def users_add(
    name: Annotated[str, typer.Argument(help="User name, e.g. dc.jones")],
    role: Annotated[list[str], typer.Option("--role", "-r", help="A role (repeat): analyst, supervisor, ...")],
    force: Annotated[str | None, typer.Option("--force", help="The user's force (needed by own-force roles).")] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a one-time password and print it (else ORE_NEW_PASSWORD or ask).")
    ] = False,
) -> None:
    """Add a user; they change the password at first sign-in."""
    import secrets

    from ore.auth.users import add_user

    password = secrets.token_urlsafe(12) if generate else _new_password(f"Password for {name}")
    with _acting("administration", "users.manage", "add users") as s:
        user = add_user(s, State.principal, name, password, role, force)
        roles, fc = user.roles, user.force_code
    console.print(Text(f"Added {name} ({roles}" + (f", force {fc}" if fc else "") + ")."))
    if generate:
        console.print(Text(f"One-time password (shown once): {password}"))


@users_app.command("disable")
@user_errors
def users_disable(
    name: Annotated[str, typer.Argument(help="User name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again instead.")] = False,
) -> None:
    """Disable a user (their sessions and tokens stop at once), or --enable them again."""
    from ore.auth.users import set_disabled

    with _acting("administration", "users.manage", "disable users") as s:
        set_disabled(s, State.principal, name, not enable)
    console.print(Text(f"{name} {'enabled' if enable else 'disabled'}."))


@users_app.command("unlock")
@user_errors
def users_unlock(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Unlock a user locked after failed sign-ins."""
    from ore.auth.users import unlock

    with _acting("administration", "users.manage", "unlock users") as s:
        unlock(s, State.principal, name)
    console.print(Text(f"{name} unlocked."))


@users_app.command("roles")
@user_errors
def users_roles(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[list[str], typer.Option("--role", "-r", help="The user's roles from now on (repeat).")],
    force: Annotated[str | None, typer.Option("--force", help="The user's force.")] = None,
) -> None:
    """Set a user's roles (and force)."""
    from ore.auth.users import set_roles

    with _acting("administration", "users.manage", "change roles") as s:
        user = set_roles(s, State.principal, name, role, force)
        roles = user.roles
    console.print(Text(f"{name}: {roles}"))


@users_app.command("list")
@user_errors
def users_list() -> None:
    """List users: roles, force, disabled or locked."""
    from ore.auth.users import list_users

    with _acting("administration", "users.manage", "list users") as s:
        users = list_users(s, State.principal)
        table = Table(title=f"{len(users)} user(s)")
        for col in ("user", "roles", "force", "state", "created"):
            table.add_column(col)
        for u in users:
            state = "disabled" if u.disabled else "locked" if u.locked_at else (
                "must change password" if u.must_change_password else "active")
            table.add_row(*(_t(v) for v in (u.username, u.roles, u.force_code, state, u.created_at)))
    console.print(table)


@tokens_app.command("create")
@user_errors
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. nightly-overdue.")],
    scope: Annotated[list[str], typer.Option("--scope", help="A permission the token may use (repeat).")],
    days: Annotated[int, typer.Option("--days", min=1, help="Days until it expires.")] = 90,
) -> None:
    """Make an API token for scripts (ORE_TOKEN); the secret is printed once, only its hash is kept."""
    from ore.auth.sessions import create_token

    with _acting("administration") as s:
        token, secret = create_token(s, State.principal, name, scope, days=days)
        tid = token.id
    console.print(Text(f"Token {tid} ({name}); set ORE_TOKEN to (shown once):"))
    console.file.write(secret + "\n")


@tokens_app.command("list")
@user_errors
def tokens_list() -> None:
    """Your API tokens."""
    from ore.auth.sessions import list_tokens

    with _acting("administration") as s:
        rows = [(t.id, t.name, t.scopes, t.expires_at, "revoked" if t.revoked_at else "active", t.last_used_at)
                for t in list_tokens(s, State.principal)]
    _print_rows(f"{len(rows)} token(s)", ("id", "name", "scopes", "expires", "state", "last used"), rows)


@tokens_app.command("revoke")
@user_errors
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="Token id (ore tokens list).")]) -> None:
    """Revoke an API token at once."""
    from ore.auth.sessions import revoke_token

    with _acting("administration") as s:
        revoke_token(s, State.principal, token_id)
    console.print(Text(f"Token {token_id} revoked."))


@audit_app.command("verify")
@user_errors
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Also check against a checkpoint exported earlier "
                                              "[default: ORE_AUDIT_CHECKPOINT, once it exists].")
    ] = None,
) -> None:
    """Walk the hash chain and name the first entry that does not fit; exit 1 if any."""
    from ore.audit import check_checkpoint, read_checkpoint, record_for, verify_chain
    from ore.audit.checkpoint import check_kept_checkpoint, kept_checkpoint
    from ore.report.package_sign import signing_key

    ws = _workspace()
    with _acting("audit", "audit.verify", "verify the audit log") as s:
        v = verify_chain(s)
        c = check_checkpoint(s, read_checkpoint(checkpoint), signing_key(ws).public_key()) if checkpoint else None
        if c is None and (kept := kept_checkpoint(ws.settings)) is not None and kept.exists():  # ORE_AUDIT_CHECKPOINT
            c = check_kept_checkpoint(s, kept, ws.root / "keys")
    ok = v.ok and (c is None or c.ok)
    if v.ok:
        console.print(Text(f"ok: {v.entries:,} entries, chain intact up to entry {v.last_seq} ({v.last_hash[:16]}...)"))
    else:
        err_console.print(Text(f"FAILED at entry {v.first_bad}: {v.problem}"), soft_wrap=True)
    if c is not None:
        (console if c.ok else err_console).print(Text(("ok: " if c.ok else "FAILED: ") + c.message), soft_wrap=True)
    with _store().session(State.principal) as s:  # after the walk: the check is itself on the record
        record_for(s, action="audit.verify", category="consultation", default_purpose=_purpose("audit"),
                   outcome="ok" if ok else f"failed: {v.problem or (c.message if c else '')}")
    if not ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
@user_errors
def audit_checkpoint(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write the signed checkpoint to; keep it elsewhere.")],
) -> None:
    """Export a signed checkpoint of the chain's head (Ed25519, the workspace key), to detect a restored copy."""
    from ore.audit import make_checkpoint, write_checkpoint
    from ore.report.package_sign import signing_key

    ws = _workspace()
    with _acting("audit", "audit.verify", "checkpoint the audit log") as s:
        cp = make_checkpoint(s, signing_key(ws))
    write_checkpoint(out, cp)
    console.print(Text(f"Checkpoint of entry {cp['checkpoint']['seq']} written to {out}; keep it where the "
                       "database's administrators cannot change it."), soft_wrap=True)


@audit_app.command("search")
@user_errors
def audit_search(
    person: Annotated[str | None, typer.Option("--person", help="Entries naming this person reference.")] = None,
    user: Annotated[str | None, typer.Option("--by-user", help="Entries of this user.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this time (ISO, UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time (ISO, UTC).")] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. cases.show, disseminate.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="collection, consultation, disclosure, ...")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000,
) -> None:
    """Search the audit log (auditors only); the search itself is logged."""
    from ore.audit import search

    with _acting("audit", "audit.read", "search the audit log") as s:
        rows = [(e.seq, e.at, e.username, e.action, e.category, e.purpose, e.outcome, e.objects, e.detail)
                for e in search(s, State.principal, person=person, user=user, since=_when(since),
                                until=_when(until), action=action, category=category, limit=limit)]
    table = Table(title=f"{len(rows):,} audit entr{'y' if len(rows) == 1 else 'ies'}")
    for col in ("#", "at (UTC)", "user", "action", "category", "purpose", "outcome", "objects", "detail"):
        table.add_column(col, overflow="fold")
    for seq, at, *rest in rows:
        table.add_row(str(seq), Text(at.isoformat(timespec="milliseconds")), *(Text(str(v)[:300]) for v in rest))
    console.print(table)


@approvals_app.command("request")
@user_errors
def approvals_request(
    action: Annotated[str, typer.Argument(help="disseminate_p1, bulk_export, cross_force_disclosure or unseal.")],
    obj: Annotated[str, typer.Argument(help="The force (dissemination), operation (export) or person (unseal).")],
    reason: Annotated[str, typer.Option("--reason", help="Why: the approver reads it.")],
) -> None:
    """Ask a second authorised user to approve an action (two-person rule); prints the approval id."""
    from ore.auth import approvals

    with _acting("supervision") as s:
        a = approvals.request(s, State.principal, action, obj, reason)
        aid = a.id
    console.print(Text(f"Approval {aid} requested: {action} of {obj}. Another authorised user runs "
                       f"`ore approvals grant {aid}`; then repeat your command with --approval {aid}."), soft_wrap=True)


@approvals_app.command("grant")
@user_errors
def approvals_grant(approval_id: Annotated[int, typer.Argument(help="The approval id.")]) -> None:
    """Approve another user's request (you cannot approve your own)."""
    from ore.auth import approvals

    with _acting("supervision", "approvals.grant", "approve") as s:
        a = approvals.grant(s, State.principal, approval_id)
        msg = f"Approval {a.id} granted: {a.requested_by} may {a.action} {a.object} once."
    console.print(Text(msg), soft_wrap=True)


@approvals_app.command("list")
@user_errors
def approvals_list() -> None:
    """Approvals not yet used."""
    from ore.auth import approvals

    with _acting("supervision") as s:
        rows = [(a.id, a.action, a.object, a.requested_by, a.reason, a.approved_by or "(waiting)")
                for a in approvals.pending(s)]
    _print_rows(f"{len(rows)} open approval(s)", ("id", "action", "object", "asked by", "reason", "approved by"), rows)


@app.command("notify-recipients")
@user_errors
def notify_recipients(
    person: Annotated[str, typer.Argument(help="The eliminated (sealed) person's reference.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for one notice per recipient.")] = Path("notices"),
    package: Annotated[str | None, typer.Option("--package", help="The package, where needed.")] = None,
) -> None:
    """Write notices to every force or recipient that received the person's data (from the disclosure log)."""
    from ore.cases.notices import notify_recipients as run_notify

    with _acting("disclosure", "cases.notify", "notify recipients") as s:
        files = run_notify(s, person, out, package)
    if not files:
        console.print(Text(f"{person}'s data was never disclosed: no one to notify."))
    for recipient, path in files.items():
        console.print(Text(f"{recipient}: {path}"))


@retention_app.command("review")
@user_errors
def retention_review(at: Annotated[str | None, typer.Option("--at", help="As at (ISO, UTC) [default: now].")] = None) -> None:
    """Persons whose retention review date has passed (periods per outcome in retention.yaml)."""
    from ore.cases.retention import review

    with _acting("retention", "retention.review", "review retention") as s:
        rows = [(d.person_ref, d.package_ref, d.status, d.last_step, d.review_on) for d in review(s, now=_when(at))]
    _print_rows(f"{len(rows):,} due for review", ("person", "package", "status", "last step", "review on"), rows)


@retention_app.command("purge")
@user_errors
def retention_purge(
    person: Annotated[str, typer.Argument(help="Person reference due for review.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is erased (recorded).")],
    package: Annotated[str | None, typer.Option("--package", help="The package, where needed.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="As at (ISO, UTC) [default: now].")] = None,
) -> None:
    """Erase a person's personal data once due; the erasure is logged without the data."""
    from ore.cases import find_case
    from ore.cases.retention import purge

    with _acting("retention", "retention.purge", "erase personal data") as s:
        counts = purge(s, find_case(s, person, package), reason=reason, now=_when(at))
    console.print(Text(f"{person}: personal data erased ({', '.join(f'{k} {v}' for k, v in counts.items())})."))


from ore.ops.cli import doctor  # noqa: E402 - registered last, beside the commands it checks

app.command("doctor")(doctor)

from ore.ops.keys_cli import keys_app  # noqa: E402 - card-token key rotation (docs/operator.md)

app.add_typer(keys_app, name="keys")

from ore.ops.backup_cli import backup_command, restore_command  # noqa: E402 - backup and restore of a workspace

app.command("backup")(backup_command)
app.command("restore")(restore_command)


if __name__ == "__main__":  # pragma: no cover
    app()
