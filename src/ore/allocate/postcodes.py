"""UK postcodes: normal form and which routing prefixes a postcode falls under.

A routing prefix is an area (``B``), a district (``TN31``), a sector (``TN31 7``) or
a whole postcode. Plain string prefixes would send ``BA1 1AA`` (Bath) to ``B``
(Birmingham) and ``CV10`` to ``CV1``; a prefix here matches only at the
boundaries of the postcode's own parts.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ore.errors import OreError
from ore.ingest.csvrows import refuse_wide_encoding

# Outward code: area letters, district digit(s), optional letter; inward: digit + two letters.
_POSTCODE = re.compile(r"^([A-Z]{1,2})([0-9][0-9A-Z]?)([0-9][A-Z]{2})$")


def compact(postcode: str | None) -> str:
    """Upper case, no spaces: the key ore compares postcodes by."""
    return re.sub(r"[^0-9A-Za-z]", "", postcode or "").upper()


def split(postcode: str | None) -> tuple[str, str, str] | None:
    """(area, outward, inward) of a well-formed UK postcode, else None."""
    m = _POSTCODE.match(compact(postcode))
    if not m:
        return None
    area, district, inward = m.groups()
    return area, area + district, inward


def pretty(postcode: str | None) -> str | None:
    parts = split(postcode)
    return f"{parts[1]} {parts[2]}" if parts else None


def routing_keys(postcode: str | None) -> list[str]:
    """The compact prefixes this postcode matches, most specific first."""
    parts = split(postcode)
    if parts is None:
        return []
    area, outward, inward = parts
    return [outward + inward, f"{outward} {inward[0]}", outward, area]


def prefix_key(prefix: str) -> str:
    """A routing-table prefix in the form ``routing_keys`` produces.

    A sector keeps its space (``TN3 1``): without it, it could not be told from the
    district ``TN31``.
    """
    words = prefix.upper().split()
    if len(words) == 2 and len(words[1]) == 1:
        return f"{words[0]} {words[1]}"
    return "".join(words)


def nspl_header(path: Path) -> list[str]:
    """The header row of an NSPL file (the ONS postcode lookup); an ``OreError`` if there is none."""
    try:
        with path.open("rb") as raw:
            refuse_wide_encoding(raw.read(4), path.name)
            raw.seek(0)
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            return next(csv.reader(text, strict=False), [])
    except csv.Error as e:
        raise OreError(f"{path.name}: line 1: the header cannot be read: {e}") from None
    except OSError as e:
        raise OreError(f"{path.name}: cannot be read ({e.strerror})") from None


_LINE = re.compile(r"CSV Error on Line: (\d+)")


def csv_fault(error: Exception) -> str:
    """DuckDB's CSV reader error said in one line: the line number and what was wrong, no row echoed."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    where = _LINE.search(str(error))
    if where is None:
        return f"cannot be read as CSV ({lines[0] if lines else type(error).__name__})"
    # DuckDB writes: the line, the row as it is in the file, the reason, then possible fixes
    said = [ln for ln in lines if not ln.startswith(("Invalid Input Error", "CSV Error", "Original Line",
                                                       "Possible", "*", "file =", "delimiter ="))]
    return f"line {where.group(1)}: {said[0] if said else 'not valid CSV'}"
