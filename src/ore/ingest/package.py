"""Ingest of a lead package: every row accepted or quarantined, in one transaction.

The manifest is checked before anything is written; then every row of
``leads.csv`` and ``visits.csv`` is checked against the spec, tokenised and
stored, or quarantined with its line and reason. The whole package lands in one
DuckDB transaction, so a crash leaves either all of it or none of it.

A plain CSV file is checked in bulk by DuckDB (``bulk``), which gives the row-by-row
result in a fraction of the time; mapped exports, workbooks and files it cannot prove
it reads the same way go row by row (``csvrows`` and ``accept``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ore.errors import OreError, PackageRejected, disk_full
from ore.ingest import archive, bulk
from ore.ingest.accept import (QUARANTINE_COLUMNS, WARNING_COLUMNS, FileReport, Mapping, check_row,
                               masked_row, readable)
from ore.ingest.cards import card_digits
from ore.ingest.csvrows import SourceRow
from ore.ingest.manifest import Manifest, manifest_for_export, read_manifest, sha256_file
from ore.ingest.schema import LEADS, VISITS, FileSpec, RowChecker
from ore.ingest.sources import open_rows
from ore.ingest.tables import create_schema, insert_rows, table_columns
from ore.ingest.tokens import keep_next_tokens, learn_next_tokens, tokeniser_for
from ore.workspace import Workspace

BATCH_ROWS = 50_000

Progress = Callable[[str, int, int | None], None]


@dataclass
class IngestReport:
    package_id: str
    status: str  # "ingested" or "already ingested"
    files: list[FileReport] = field(default_factory=list)
    paired: int = 0  # during a key rotation, card tokens paired with the new key by reading it again


def _no_progress(label: str, done: int, total: int | None) -> None:
    return None


def load_file(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    path: Path,
    checker: RowChecker,
    *,
    package_id: str | None,
    settings: Any,
    mapping: Mapping | None = None,
    progress: Progress = _no_progress,
    total: int | None = None,
    label: str | None = None,
    bulk_reader: bool = True,
) -> FileReport:
    """Check and store every row of one file in the open transaction; returns its accounting.

    A plain CSV file (no mapping) goes through ``bulk.load`` when it can; ``bulk_reader=False``
    forces the row-by-row reader (tests compare the two).
    """
    label = label or spec.file
    header, rows, close = open_rows(path, settings.max_field_chars, settings.max_package_bytes,
                                    settings.max_archive_entries, max_ratio=settings.max_compression_ratio)
    try:
        if mapping is not None:
            mapping.check_header(header, label)
        else:
            missing = [c.name for c in spec.columns if c.required and c.name not in header]
            if missing:
                raise PackageRejected(f"{label}: line 1: required column(s) missing: {', '.join(missing)}")
            if bulk_reader:  # the reader below takes what bulk.load cannot prove it reads the same way
                report = bulk.load(con, spec, path, header, checker, package_id=package_id,
                                   max_field_chars=settings.max_field_chars, label=label, progress=progress,
                                   total=total)
                if report is not None:
                    return report
        return _load_rows(con, spec, rows, checker, package_id, mapping, progress, total, label)
    finally:
        close()


def _load_rows(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    rows: Iterator[SourceRow],
    checker: RowChecker,
    package_id: str | None,
    mapping: Mapping | None,
    progress: Progress,
    total: int | None,
    label: str,
) -> FileReport:
    report = FileReport(label)
    columns = table_columns(spec, origin=package_id is not None)
    accepted: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    warned: list[dict[str, Any]] = []

    def flush() -> None:
        insert_rows(con, spec.table, columns, accepted)
        insert_rows(con, "quarantine", QUARANTINE_COLUMNS, quarantined)
        insert_rows(con, "ingest_warnings", WARNING_COLUMNS, warned)
        accepted.clear()
        quarantined.clear()
        warned.clear()

    for row in rows:
        check_row(row, spec, checker, package_id, label, report, accepted, quarantined, warned, mapping)
        if report.rows_read % BATCH_ROWS == 0:
            flush()
            progress(label, report.rows_read, total)
    flush()
    progress(label, report.rows_read, total)
    return report


def ingest(
    ws: Workspace,
    source: Path,
    *,
    mapping: Mapping | None = None,
    mapping_text: str | None = None,
    package_id: str | None = None,
    progress: Progress = _no_progress,
) -> IngestReport:
    """Ingest a package directory, a zip of one, or (with ``package_id``) a bare export file.

    A full disk, wherever it strikes (the unpacked files, DuckDB's log, the key), is one DiskFull
    error naming the disk; the transaction keeps the workspace as it was before.
    """
    source = Path(source)
    if not source.exists():
        raise PackageRejected(f"{source}: no such file or directory")
    try:
        return _ingest(ws, source, mapping, mapping_text, package_id, progress)
    except OreError:
        raise
    except Exception as e:
        if (full := disk_full(e, ws.root, f"ingesting {source.name}")) is not None:
            raise full from None
        raise


def _ingest(ws: Workspace, source: Path, mapping: Mapping | None, mapping_text: str | None, package_id: str | None,
            progress: Progress) -> IngestReport:
    with ws.lock(f"ingest {source.name}"):
        # Unpacked files hold clear card numbers: any left by a run that was killed go now
        # (every unpack happens under this lock, so none of them is in use).
        for stale in ws.tmp.glob("unpack-*"):
            archive.remove(stale)
        unpacked: Path | None = None
        try:
            if source.is_dir():
                root = source
            elif source.suffix.lower() == ".zip":
                unpacked = Path(_tempdir(ws))
                root = archive.unpack(source, unpacked, ws.settings.max_package_bytes,
                                      ws.settings.max_archive_entries,
                                      max_ratio=ws.settings.max_compression_ratio)
            else:
                if not package_id:
                    raise PackageRejected(
                        f"{source.name}: a bare export has no manifest; give --package-id (and usually --mapping)"
                    )
                return _ingest_export(ws, source, package_id, mapping, mapping_text, progress)
            manifest = read_manifest(root)
            if package_id and package_id != manifest.package_id:
                raise PackageRejected(
                    f"manifest.json: package_id is {manifest.package_id!r}, the command line says {package_id!r}"
                )
            files = {name: root / name for name in manifest.files}
            return _store(ws, manifest, files, mapping, mapping_text, progress)
        finally:
            if unpacked is not None:
                archive.remove(unpacked)


def _tempdir(ws: Workspace) -> str:
    return tempfile.mkdtemp(prefix="unpack-", dir=ws.tmp)


def _ingest_export(
    ws: Workspace, path: Path, package_id: str, mapping: Mapping | None, mapping_text: str | None,
    progress: Progress,
) -> IngestReport:
    # The row count of a manifest made on receipt is filled in by the load itself: reading the file
    # once more just to count it would double the slowest part of a bare export (XLSX especially).
    manifest = manifest_for_export(path, package_id)
    return _store(ws, manifest, {"leads.csv": path}, mapping, mapping_text, progress)


def _unchanged_since_checked(path: Path, label: str, meta: dict[str, Any], rows_read: int) -> None:
    """The file as loaded is the file the manifest check passed: it may have changed in between
    (a copy still being written into the package directory)."""
    if meta["rows"] is None:  # a manifest made on receipt records what was read
        meta["rows"] = rows_read
    if rows_read != meta["rows"]:
        raise PackageRejected(f"{label}: has {rows_read:,} data rows, manifest.json says {meta['rows']:,}")
    if sha256_file(path) != meta["sha256"].lower():
        raise PackageRejected(
            f"{label}: changed while it was being read (it agreed with manifest.json when checked); "
            "nothing was written: ingest it again once it is complete"
        )


def _store(
    ws: Workspace,
    manifest: Manifest,
    files: dict[str, Path],
    mapping: Mapping | None,
    mapping_text: str | None,
    progress: Progress,
) -> IngestReport:
    with ws.duckdb() as con:
        create_schema(con)
        known = con.execute(
            "SELECT fingerprint FROM packages WHERE package_id = ?", [manifest.package_id]
        ).fetchall()
        if known:
            if known[0][0] == manifest.fingerprint:
                # during a key rotation, reading it again pairs its cards with the new key (ore keys rekey)
                paired = learn_next_tokens(ws, con, [(spec, files[spec.file], spec.file) for spec in (LEADS, VISITS)
                                                     if spec.file in files],
                                           package_id=manifest.package_id, mapping=mapping)
                reports = con.execute(
                    "SELECT file, rows_read, accepted, quarantined, warnings FROM ingest_files "
                    "WHERE package_id = ? ORDER BY file",
                    [manifest.package_id],
                ).fetchall()
                return IngestReport(manifest.package_id, "already ingested", [FileReport(*r) for r in reports], paired)
            raise PackageRejected(
                f"package {manifest.package_id!r} was already ingested with different content; "
                "a corrected package needs a new package_id"
            )
        had_key = ws.has_card_key()
        tokeniser = tokeniser_for(ws)
        version = tokeniser.version
        received = manifest.received
        now = datetime.now(UTC).replace(tzinfo=None)
        report = IngestReport(manifest.package_id, "ingested")
        con.execute("BEGIN TRANSACTION")
        try:
            for spec in (LEADS, VISITS):
                if spec.file not in files:
                    continue
                checker = RowChecker(spec, tokeniser, now=now)
                path = files[spec.file]
                label = path.name if spec.file == "leads.csv" else spec.file
                file_report = load_file(
                    con,
                    spec,
                    path,
                    checker,
                    package_id=manifest.package_id,
                    settings=ws.settings,
                    mapping=mapping if spec.file == "leads.csv" else None,
                    progress=progress,
                    total=manifest.files[spec.file]["rows"],
                    label=label,
                )
                if not file_report.balanced:  # pragma: no cover - an invariant, checked so it never goes unseen
                    raise AssertionError(f"{label}: rows read != accepted + quarantined")
                _unchanged_since_checked(path, label, manifest.files[spec.file], file_report.rows_read)
                report.files.append(file_report)
                con.execute(
                    "INSERT INTO ingest_files VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [manifest.package_id, label, manifest.files[spec.file]["sha256"], file_report.rows_read,
                     file_report.accepted, file_report.quarantined, file_report.warnings],
                )
            raw = manifest.raw
            con.execute(
                "INSERT INTO packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [manifest.package_id, raw.get("operation"), raw.get("source"), received,
                 raw.get("jurisdiction"), manifest.to_json(), manifest.fingerprint, now, mapping_text],
            )
            keep_next_tokens(con, tokeniser)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            if not had_key:
                ws.discard_card_key(version)  # made for this package, used by nothing that was kept
            raise
        return report


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Undo the open transaction; a COMMIT that failed (a full disk) has ended it already, and the
    error that made us roll back, not this one, is the one to report."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


__all__ = ["IngestReport", "FileReport", "Mapping", "ingest", "load_file", "card_digits", "masked_row",
           "readable"]
