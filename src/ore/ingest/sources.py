"""Opening an input file as a header and a stream of rows, whatever its container."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ore.errors import PackageRejected
from ore.ingest.archive import MAX_RATIO
from ore.ingest.csvrows import SourceRow, open_csv

Opened = tuple[list[str], Iterator[SourceRow], Callable[[], None]]


def open_rows(path: Path, max_field_chars: int, max_bytes: int, max_entries: int, *,
              max_ratio: float = MAX_RATIO) -> Opened:
    """Header, rows and a close function for a CSV or XLSX file (a workbook is a zip: the limits apply)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from ore.ingest.xlsx import open_xlsx

        return open_xlsx(path, max_field_chars, max_bytes, max_entries, max_ratio=max_ratio)
    if suffix in (".csv", ".txt", ".tsv", ""):
        header, rows, stream = open_csv(path, max_field_chars)
        return header, rows, stream.close
    raise PackageRejected(f"{path.name}: ore reads CSV and XLSX files, not {suffix}")
