"""The ``ore`` command: one Typer app whose commands call the pipeline stages.

Commands print for people (Rich tables, progress bars on long work) and exit
non-zero with one clear message on an error a user can act on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ore import __version__
from ore.config import get_settings
from ore.errors import OreError
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

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
PROGRESS_MIN_ROWS = 5_000


class State:
    workspace: Path | None = None


def _version(value: bool) -> None:
    if value:
        console.print(f"ore {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="ORE_WORKSPACE", help="Workspace directory [default: ./ore-workspace]"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """ore keeps its state in a workspace directory: DuckDB bulk tables, the case store, the card-token key."""
    State.workspace = workspace


def _workspace() -> Workspace:
    return Workspace.open(State.workspace, get_settings())


def user_errors(fn: F) -> F:
    """Show an OreError as one red line and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OreError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


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
    if report.status == "already ingested":
        console.print(f"Package [bold]{report.package_id}[/] was already ingested with the same content: nothing to do.")
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
) -> None:
    """Resolve, corroborate, prioritise and allocate a package; write the triage output and report."""
    from ore.pipeline import triage as run_triage

    mapper, mapping_text = _load_mapping(mapping)
    ws = _workspace()
    with progress_bar() as progress, console.status("triage") as status:
        summary = run_triage(
            ws, package, out, reference=reference, postcodes=postcodes, mapping=mapper, mapping_text=mapping_text,
            package_id=package_id, policy=policy, fraud_policy=fraud_policy, progress=progress,
            step=lambda name: status.update(f"triage: {name}"),
        )
    console.print(_file_table(f"Package {summary.package_id}: {summary.ingest.status}", summary.ingest.files))
    console.print(_triage_table(summary))
    alloc = summary.allocation
    console.print(f"Allocated to a force: {alloc.get('allocated', 0):,}; unallocated queue: {alloc.get('unallocated', 0):,}")
    console.print("Stage times (s): " + ", ".join(f"{k} {v}" for k, v in summary.seconds.items()))
    console.print(f"Output written to [bold]{out}[/] (records.csv, persons.csv, quarantine.csv, report.html).")


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


if __name__ == "__main__":  # pragma: no cover
    app()
