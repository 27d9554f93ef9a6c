"""Reading CSV files row by row without ever losing one.

Each data row comes back with its physical line number and any structural
problem (wrong field count, bytes that are not UTF-8, an absurdly long field) so
that the caller can quarantine it and carry on with the rest of the file.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ore.errors import PackageRejected

# The csv module's own limit is raised so that a long field is our quarantine reason, not a crash.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class SourceRow:
    """One data row: where it was, its values by header, and what is structurally wrong with it."""

    line: int
    values: dict[str, str]
    problems: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)


def _has_undecodable(text: str) -> bool:
    # surrogateescape maps each undecodable byte to a lone surrogate U+DC80..U+DCFF
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def clean_header(header: list[str], source: str) -> list[str]:
    """Header names trimmed, BOM removed; duplicates or blanks reject the file."""
    names = [h.replace("\ufeff", "").strip() for h in header]
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise PackageRejected(f"{source}: line 1: column {i} has no header name")
        if _has_undecodable(name):
            raise PackageRejected(f"{source}: line 1: header of column {i} is not valid UTF-8")
        if name in seen:
            raise PackageRejected(f"{source}: line 1: header {name!r} appears twice")
        seen.add(name)
    return names


def read_csv(stream: BinaryIO, source: str, max_field_chars: int) -> tuple[list[str], Iterator[SourceRow]]:
    """The header of a CSV byte stream and an iterator over its data rows.

    Blank lines are not rows. A row's line number is the physical line where it
    starts (the header is line 1), as a person opening the file would count.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise PackageRejected(f"{source}: the file is empty (no header row)") from None
    except csv.Error as e:
        raise PackageRejected(f"{source}: line 1: the header cannot be read: {e}") from None
    names = clean_header(header, source)
    return names, _rows(reader, names, source, max_field_chars)


def _rows(reader: csv.reader, names: list[str], source: str, max_field_chars: int) -> Iterator[SourceRow]:  # type: ignore[valid-type]
    width = len(names)
    end = reader.line_num  # type: ignore[attr-defined]
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            end = reader.line_num  # type: ignore[attr-defined]
            yield SourceRow(start, {}, [f"the row cannot be parsed as CSV: {e}"])
            continue
        end = reader.line_num  # type: ignore[attr-defined]
        if not fields or fields == [""] and width > 1:
            continue  # a blank line is not a row
        problems: list[str] = []
        if len(fields) != width:
            problems.append(f"row has {len(fields)} fields, the header has {width}")
        values = dict(zip(names, fields, strict=False))
        for name, value in values.items():
            if len(value) > max_field_chars:
                problems.append(f"field {name} is {len(value):,} characters long (limit {max_field_chars:,})")
            elif _has_undecodable(value):
                problems.append(f"field {name} has bytes that are not UTF-8")
        if len(fields) > width:
            extra = fields[width:]
            if any(_has_undecodable(v) for v in extra):
                problems.append("extra fields have bytes that are not UTF-8")
        yield SourceRow(start, values, problems, fields)


def open_csv(path: Path, max_field_chars: int) -> tuple[list[str], Iterator[SourceRow], BinaryIO]:
    """Open ``path`` and read it; the caller closes the returned stream."""
    stream = path.open("rb")
    try:
        header, rows = read_csv(stream, path.name, max_field_chars)
    except Exception:
        stream.close()
        raise
    return header, rows, stream


def count_rows(path: Path) -> int:
    """Data rows as ``read_csv`` counts them (blank lines excluded), for manifest checks."""
    header, rows, stream = open_csv(path, max_field_chars=sys.maxsize)
    with stream:
        return sum(1 for _ in rows)
