"""CSV that a spreadsheet opens as text: the one place ore neutralises formula injection.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run by
Excel or LibreOffice as a formula (``=HYPERLINK(...)``, ``@SUM(...)``); names, merchants
and record ids come from the sender's data, so every CSV ore writes for people goes
through ``safe_cell``: such a cell gets a leading apostrophe and is shown as typed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple[str, int]:
    """The CSV text of ``rows`` under ``header``, every cell neutralised; and the number of data rows."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([safe_cell(h) for h in header])
    n = 0
    for row in rows:
        w.writerow([safe_cell(v) for v in row])
        n += 1
    return out.getvalue(), n
