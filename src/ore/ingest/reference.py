"""Loading the receiving agency's holdings (register, convictions, ...) as a snapshot.

Holdings go through the same readers and quarantine rules as leads. Each file
replaces its previous load whole, since a holding is a snapshot of what was
known; a file whose hash is unchanged is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ore.errors import OreError
from ore.ingest.cards import Tokeniser
from ore.ingest.manifest import sha256_file
from ore.ingest.package import FileReport, Progress, _no_progress, load_file
from ore.ingest.schema import REFERENCE, FileSpec, RowChecker
from ore.ingest.tables import create_schema
from ore.ingest.tokens import keep_next_tokens, tokeniser_for
from ore.workspace import Workspace


def load_reference(ws: Workspace, directory: Path, progress: Progress = _no_progress) -> list[FileReport]:
    """Load every holdings file present in ``directory``; return what each file gave."""
    directory = Path(directory)
    if not directory.is_dir():
        raise OreError(f"{directory}: not a directory of reference holdings")
    present = [spec for spec in REFERENCE if (directory / spec.file).is_file()]
    if not present:
        names = ", ".join(spec.file for spec in REFERENCE)
        raise OreError(f"{directory}: holds none of the reference files ({names})")
    reports: list[FileReport] = []
    with ws.lock(f"reference load {directory.name}"), ws.duckdb() as con:
        create_schema(con)
        tokeniser = tokeniser_for(ws)
        # One transaction for the whole directory: a file rejected as a whole (a required column
        # missing) leaves every holding as it was, not the files before it replaced.
        con.execute("BEGIN TRANSACTION")
        try:
            for spec in present:
                reports.append(_load_holding(con, spec, directory / spec.file, tokeniser, ws, progress))
            keep_next_tokens(con, tokeniser)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return reports


def _load_holding(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, path: Path, tokeniser: Tokeniser, ws: Workspace,
    progress: Progress,
) -> FileReport:
    """Replace one holding with the file's rows, unless the file is the one already loaded."""
    digest = sha256_file(path)
    label = f"reference/{spec.file}"
    prior = con.execute(
        "SELECT sha256, rows_read, accepted, quarantined, warnings FROM reference_loads WHERE file = ?",
        [spec.file],
    ).fetchall()
    # during a key rotation a file with card numbers is read again, to pair its cards with the new key
    rekeying = tokeniser.next_version is not None and any(c.kind == "card" for c in spec.columns)
    if prior and prior[0][0] == digest and not rekeying:
        return FileReport(label, *prior[0][1:])
    con.execute(f"DELETE FROM {spec.table}")
    con.execute("DELETE FROM quarantine WHERE file = ?", [label])
    con.execute("DELETE FROM ingest_warnings WHERE file = ?", [label])
    report = load_file(
        con, spec, path, RowChecker(spec, tokeniser), package_id=None, settings=ws.settings,
        progress=progress, label=label,
    )
    con.execute("DELETE FROM reference_loads WHERE file = ?", [spec.file])
    con.execute(
        "INSERT INTO reference_loads VALUES (?, ?, ?, ?, ?, ?, ?)",
        [spec.file, digest, datetime.now(UTC).replace(tzinfo=None), report.rows_read,
         report.accepted, report.quarantined, report.warnings],
    )
    return report
