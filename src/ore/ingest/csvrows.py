"""Reading CSV files row by row without ever losing one.

Each data row comes back with its physical line number and any structural
problem (wrong field count, bytes that are not UTF-8, an absurdly long field, an
unbalanced quote) so that the caller can quarantine it and carry on with the rest
of the file. An unbalanced quote costs one row, not the rest of the file: the
row is cut at the end of its own line and the lines it swallowed are read again.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ore.errors import PackageRejected
from ore.ingest.cards import mask_text

# The csv module's own limit is raised so that a long field is our quarantine reason, not a crash.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

# A quoted field may hold line breaks (an address typed on two lines), but one running over more
# lines than this is taken for a quote that was opened and never closed.
MAX_RECORD_LINES = 100


@dataclass
class SourceRow:
    """One data row: where it was, its values by header, and what is structurally wrong with it."""

    line: int
    values: dict[str, str]
    problems: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)


# surrogateescape maps each undecodable byte to a lone surrogate U+DC80..U+DCFF
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _has_undecodable(text: str) -> bool:
    return _UNDECODABLE.search(text) is not None


# Byte-order marks of the encodings Excel's "Unicode text" and some banks' exports use (UTF-32 first:
# its little-endian mark begins with UTF-16's).
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def refuse_wide_encoding(head: bytes, source: str) -> None:
    """Reject a file that starts with a UTF-16 or UTF-32 byte-order mark, saying so.

    Read as UTF-8 such a file is a NUL between every letter: its header would be refused as
    bytes that are not UTF-8, which does not tell the sender what to change.
    """
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise PackageRejected(f"{source}: line 1: the file is {name} (it starts with a {name} byte-order "
                                  "mark); ore reads UTF-8: save it as \"CSV UTF-8\"")


MAX_HEADER_CHARS = 1000  # a column name is a few words; a longer one is data or damage, not a header


def clean_header(header: list[str], source: str) -> list[str]:
    """Header names trimmed, BOM removed; duplicates, blanks, NULs or absurd lengths reject the file."""
    names = [h.replace("\ufeff", "").strip() for h in header]
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise PackageRejected(f"{source}: line 1: column {i} has no header name")
        if _has_undecodable(name):
            raise PackageRejected(f"{source}: line 1: header of column {i} is not valid UTF-8")
        if "\x00" in name:
            raise PackageRejected(f"{source}: line 1: header of column {i} holds a NUL byte "
                                  "(a UTF-16 file without its byte-order mark?); ore reads UTF-8")
        if len(name) > MAX_HEADER_CHARS:
            raise PackageRejected(f"{source}: line 1: header of column {i} is {len(name):,} characters long "
                                  f"(limit {MAX_HEADER_CHARS:,})")
        if name in seen:
            # a file without a header row has data here: never echo a card number
            raise PackageRejected(f"{source}: line 1: header {mask_text(name)!r} appears twice")
        seen.add(name)
    return names


class _Runaway(Exception):
    """A record has run over ``MAX_RECORD_LINES`` physical lines: a quote opened and never closed."""


class _Lines:
    """The physical lines handed to the csv parser: counted, and replayable after an unbalanced quote.

    The parser pulls lines as it needs them; ``record`` holds those of the row being
    read, ``ran_out`` says the file ended while the parser still wanted more (so a
    quoted field was open at the end of the file).
    """

    def __init__(self, text: Iterator[str]) -> None:
        self._text = text
        self._again: list[str] = []  # lines to be read again, last first
        self.number = 0  # physical line number of the last line handed out
        self.record: list[str] = []
        self.ran_out = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.record) >= MAX_RECORD_LINES:
            raise _Runaway
        if self._again:
            line = self._again.pop()
        else:
            try:
                line = next(self._text)
            except StopIteration:
                self.ran_out = True
                raise
        self.number += 1
        self.record.append(line)
        return line

    def start_record(self) -> None:
        self.record = []
        self.ran_out = False

    def read_again(self, lines: list[str]) -> None:
        self._again.extend(reversed(lines))
        self.number -= len(lines)


def read_csv(stream: BinaryIO, source: str, max_field_chars: int) -> tuple[list[str], Iterator[SourceRow]]:
    """The header of a CSV byte stream and an iterator over its data rows.

    Blank lines are not rows. A row's line number is the physical line where it
    starts (the header is line 1), as a person opening the file would count.
    """
    if not isinstance(stream, io.BufferedReader):  # any readable byte stream (BytesIO, a zip member)
        stream = io.BufferedReader(stream)  # type: ignore[arg-type]
    refuse_wide_encoding(stream.peek(4)[:4], source)
    # utf-8-sig: a BOM is dropped before parsing, so a quoted first header name still parses as quoted
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = _Lines(iter(text))
    try:
        header = next(csv.reader(lines, strict=False))
    except StopIteration:
        raise PackageRejected(f"{source}: the file is empty (no header row)") from None
    except _Runaway:
        header = []
    except csv.Error as e:
        raise PackageRejected(f"{source}: line 1: the header cannot be read: {e}") from None
    if not header and not lines.ran_out and len(lines.record) == 1:
        raise PackageRejected(f"{source}: line 1: the first line is blank; it must be the header row")
    if not header or lines.ran_out:
        raise PackageRejected(f"{source}: line 1: the header opens a quote that never closes")
    names = clean_header(header, source)
    return names, _rows(lines, names, source, max_field_chars)


def _rows(lines: _Lines, names: list[str], source: str, max_field_chars: int) -> Iterator[SourceRow]:
    width = len(names)
    reader = csv.reader(lines, strict=False)
    while True:
        lines.start_record()
        start = lines.number + 1
        try:
            fields: list[str] | None = next(reader)
        except StopIteration:
            return
        except _Runaway:
            fields = None
        except csv.Error as e:
            reader = csv.reader(lines, strict=False)  # a fresh parser: the old one's state is unknown
            yield SourceRow(start, {}, [f"the row cannot be parsed as CSV: {e}"], ["".join(lines.record)])
            continue
        if fields is None or lines.ran_out or (len(lines.record) > 1 and len(fields) != width):
            # An unbalanced quote: a field opened with " and not closed where the row should end
            # swallows the rows after it. The row is cut back to its own first line and quarantined;
            # the lines it swallowed are read again as rows of their own.
            reader = csv.reader(lines, strict=False)
            first, swallowed = lines.record[0], lines.record[1:]
            lines.read_again(swallowed)
            yield _unbalanced(start, first, names, fields is None)
            continue
        if not fields or fields == [""] and width > 1:
            continue  # a blank line is not a row
        # the field-by-field search for undecodable bytes runs only for the rare row that has some
        undecodable = any(_has_undecodable(text) for text in lines.record)
        yield source_row(start, fields, names, max_field_chars, undecodable)


def source_row(line: int, fields: list[str], names: list[str], max_field_chars: int,
               undecodable: bool = False) -> SourceRow:
    """A parsed row with its structural problems: one rule for this reader and the bulk one.

    ``undecodable`` says the row's text holds bytes that were not UTF-8, so its fields are searched.
    """
    width = len(names)
    problems: list[str] = []
    if len(fields) != width:
        problems.append(f"row has {len(fields)} fields, the header has {width}")
    values = dict(zip(names, fields, strict=False))
    if undecodable or max(map(len, fields)) > max_field_chars:  # a field-by-field look only when needed
        for name, value in values.items():
            if len(value) > max_field_chars:
                problems.append(f"field {name} is {len(value):,} characters long (limit {max_field_chars:,})")
            elif undecodable and _has_undecodable(value):
                problems.append(f"field {name} has bytes that are not UTF-8")
    if undecodable and len(fields) > width and any(_has_undecodable(v) for v in fields[width:]):
        problems.append("extra fields have bytes that are not UTF-8")
    return SourceRow(line, values, problems, fields)


def _unbalanced(line: int, text: str, names: list[str], runaway: bool) -> SourceRow:
    fields = next(csv.reader([text], strict=False), [])
    values = dict(zip(names, fields, strict=False))
    where = f"runs over more than {MAX_RECORD_LINES} lines" if runaway else "does not close where the row ends"
    problem = (f"unbalanced quote: a quoted field opened on line {line} {where}; "
               "the row is cut at the end of its line and the lines after it are read as rows")
    return SourceRow(line, values, [problem], fields)


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
