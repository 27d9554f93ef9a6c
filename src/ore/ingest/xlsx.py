"""Reading the first sheet of an XLSX workbook as a header and rows, like a CSV file.

The workbook is a zip archive of XML: its directory is checked first (entry
count, declared uncompressed sizes, compression ratios, entry names, the same
checks as a zipped package), and its XML is parsed by openpyxl through
defusedxml, so entity expansion and external entities are refused. Python's
zipfile never inflates an entry past its declared size, so a lying directory
cannot make the reader exceed what was checked.

Row numbers are the sheet's row numbers (the header is row 1); rows or cells out of
order, which openpyxl's own iterator would drop unseen, reject the file. Cells are turned
into text in the canonical forms: dates ``YYYY-MM-DD``, date-times
``YYYY-MM-DDTHH:MM:SS``, numbers as plain decimals (no exponent), booleans
``true``/``false``. Trailing empty cells are not a wrong width (spreadsheets
drop them); a non-empty cell beyond the header is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ore.errors import PackageRejected
from ore.ingest.archive import MAX_RATIO, check_archive
from ore.ingest.csvrows import SourceRow, clean_header

MAX_SHEET_ROWS = 1_048_576  # what Excel itself can hold
Opened = tuple[list[str], Iterator[SourceRow], Callable[[], None]]


def cell_text(value: Any) -> str:
    """A cell's value as text in the canonical form of its type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        # spreadsheet times are day fractions: round away float noise to the millisecond
        value = _round_ms(value)
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _round_ms(value: datetime) -> datetime:
    micro = value.microsecond
    rounded = round(micro / 1000) * 1000
    return value.replace(microsecond=0) + timedelta(microseconds=rounded)


def _open_workbook(path: Path) -> Any:
    import openpyxl

    if not openpyxl.DEFUSEDXML:
        raise PackageRejected(
            f"{path.name}: XLSX files are read only through defusedxml, which is missing or disabled "
            "(OPENPYXL_DEFUSEDXML); export the sheet as CSV instead"
        )
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except PackageRejected:
        raise
    except Exception as e:  # openpyxl raises many kinds for a damaged or hostile workbook
        raise PackageRejected(f"{path.name}: {_why(e, 'not a readable XLSX workbook')}") from None


def _why(error: BaseException, what: str) -> str:
    """The innermost cause of an openpyxl failure, said plainly (defusedxml refusals named as such)."""
    from defusedxml import DefusedXmlException

    root = error
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    if isinstance(root, DefusedXmlException):
        return f"refused: its XML declares entities or a DTD, which ore does not expand ({root!r})"
    text = str(root).split("\n")[0]
    return f"{what} ({type(root).__name__}: {text})"


def open_xlsx(path: Path, max_field_chars: int, max_bytes: int, max_entries: int, *,
              max_ratio: float = MAX_RATIO) -> Opened:
    """Header, rows and a close function for the first worksheet of ``path``."""
    check_archive(path, max_bytes, max_entries, max_ratio=max_ratio)
    wb = _open_workbook(path)
    try:
        sheets = wb.worksheets
        if not sheets:
            raise PackageRejected(f"{path.name}: the workbook has no worksheet")
        ws = sheets[0]
        rows = _sheet_rows(ws, path.name)
        first = next(rows, None)
        if first is None:
            raise PackageRejected(f"{path.name}: sheet {ws.title!r} is empty (no header row)")
        number, cells = first
        named = [(column, cell_text(value)) for column, value in cells if number == 1]
        named = [(column, text) for column, text in named if text.strip()]
        texts = [""] * (named[-1][0] if named else 0)
        for column, text in named:
            texts[column - 1] = text
        if not texts:
            raise PackageRejected(f"{path.name}: line 1: sheet {ws.title!r} has no header in its first row")
        header = clean_header(texts, path.name)
    except BaseException:
        wb.close()
        raise
    return header, _rows(rows, header, path.name, max_field_chars), wb.close


def _sheet_rows(ws: Any, source: str) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """(row number, [(column, value)]) of each row the sheet's XML holds, in order; damage is refused.

    openpyxl's own row iterator silently drops a row numbered at or below the one before it and
    a cell placed after a cell of a later column, and fills every skipped row number with an empty
    row (a million of them for one row numbered 1048576). The sheet is parsed here with openpyxl's
    parser (through defusedxml, as openpyxl itself does) so that no cell goes unseen: rows and cells
    out of order are a clear error, and a gap costs nothing (nor does one cell in column XFD: rows
    stay sparse, so a small sheet cannot make 16,384 fields a row).
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    line = 1
    try:
        with ws._get_source() as src:
            wb = ws.parent
            parser = WorkSheetParser(src, ws._shared_strings, data_only=True, epoch=wb.epoch,
                                     date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)
            last = 0
            for number, cells in parser.parse():
                line = max(number, 1)
                if number < 1:
                    raise PackageRejected(f"{source}: line {last + 1}: a row is numbered {number}")
                if number <= last:
                    raise PackageRejected(f"{source}: line {number}: row {number} comes after row {last}: "
                                          "the sheet's rows are out of order or repeated")
                if number > MAX_SHEET_ROWS:
                    raise PackageRejected(f"{source}: line {number}: the sheet claims more than "
                                          f"{MAX_SHEET_ROWS:,} rows")
                last = number
                columns = [cell["column"] for cell in cells]
                if any(b <= a for a, b in zip([0, *columns], columns, strict=False)):
                    raise PackageRejected(f"{source}: line {number}: the cells of row {number} are out of "
                                          "order or repeated")
                yield number, [(cell["column"], cell["value"]) for cell in cells]
    except PackageRejected:
        raise
    except Exception as e:  # a damaged entry, bad XML, or defusedxml refusing entities or a DTD
        raise PackageRejected(f"{source}: line {line}: {_why(e, 'the sheet cannot be read')}") from None


def _rows(rows: Iterator[tuple[int, list[tuple[int, Any]]]], names: list[str], source: str,
          max_field_chars: int) -> Iterator[SourceRow]:
    """Rows as the CSV reader gives them; a value beyond the header is a wrong width (kept, to be shown)."""
    width = len(names)
    for line, cells in rows:
        texts = [(column, cell_text(value)) for column, value in cells]
        filled = [column for column, text in texts if text.strip()]
        if not filled:
            continue  # an empty row is not a row
        fields = [""] * width
        beyond: list[str] = []
        for column, text in texts:
            if column <= width:
                fields[column - 1] = text
            elif text.strip():
                beyond.append(text)
        problems: list[str] = []
        if filled[-1] > width:
            problems.append(f"row has {filled[-1]} fields, the header has {width}")
        values = dict(zip(names, fields, strict=True))
        for name, value in values.items():
            if len(value) > max_field_chars:
                problems.append(f"field {name} is {len(value):,} characters long (limit {max_field_chars:,})")
        yield SourceRow(line, values, problems, fields + beyond)


__all__ = ["open_xlsx", "cell_text"]
