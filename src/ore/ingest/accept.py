"""One row's fate: accepted with its stored values and warnings, or quarantined with its reason.

The row-by-row load and the rows the bulk load leaves to Python both come here, so what
a row becomes, and the words that say why, cannot differ between the two readers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from ore.ingest.cards import mask, mask_text
from ore.ingest.csvrows import SourceRow
from ore.ingest.schema import FieldError, FileSpec, RowChecker


class Mapping(Protocol):
    """Brings a foreign file's rows to the canonical columns (see ``ore.ingest.mapping``)."""

    def check_header(self, header: list[str], file: str) -> None: ...

    def apply(self, values: dict[str, str], file: str) -> dict[str, str]: ...


@dataclass
class FileReport:
    file: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    warnings: int = 0

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.accepted + self.quarantined


SHOWN_CHARS = 200  # a quarantined value longer than this is kept cut, with its length


def readable(value: str, limit: int = SHOWN_CHARS) -> str:
    """A value as people can read it and DuckDB can store it.

    Undecodable bytes (lone surrogates from ``surrogateescape``) become ``\\xNN``,
    since a surrogate cannot be encoded and would fail the insert; a value longer
    than ``limit`` is cut, so a 10 MB field does not become a 10 MB quarantine row.
    """
    if len(value) > limit:
        value = f"{value[:limit]}... ({len(value):,} characters)"
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = value.encode("utf-8", "backslashreplace")
    return data.decode("utf-8", "backslashreplace")


def masked_row(values: dict[str, str], raw: list[str]) -> str:
    """A quarantined row as JSON for people to read, with every card-like number masked."""
    shown: dict[str, Any] = {k: readable(v) for k, v in values.items()} if values else {
        "fields": [readable(v) for v in raw]}
    if values and len(raw) > len(values):  # a row with more fields than the header: keep the surplus too
        shown["(fields beyond the header)"] = [readable(v) for v in raw[len(values):]]
    if values.get("card_number"):
        digits = "".join(ch for ch in values["card_number"] if ch.isdigit())
        shown["card_number"] = readable(mask(digits) if len(digits) >= 12 else "*" * len(digits))
    return mask_text(json.dumps(shown, ensure_ascii=False))


def _record_id(values: dict[str, str]) -> str:
    return (values.get("record_id") or "").strip()


QUARANTINE_COLUMNS = [
    ("package_id", "VARCHAR"),
    ("file", "VARCHAR"),
    ("line", "BIGINT"),
    ("record_id", "VARCHAR"),
    ("field", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("row_masked", "VARCHAR"),
]
WARNING_COLUMNS = [
    ("package_id", "VARCHAR"),
    ("file", "VARCHAR"),
    ("line", "BIGINT"),
    ("record_id", "VARCHAR"),
    ("field", "VARCHAR"),
    ("message", "VARCHAR"),
]


def check_row(
    row: SourceRow,
    spec: FileSpec,
    checker: RowChecker,
    package_id: str | None,
    label: str,
    report: FileReport,
    accepted: list[dict[str, Any]],
    quarantined: list[dict[str, Any]],
    warned: list[dict[str, Any]],
    mapping: Mapping | None = None,
) -> None:
    """Accept one row (its stored values, with warnings) or quarantine it, counting it in ``report``.

    The one place a row's fate is decided in Python: the row-by-row load and the rows the bulk
    load hands over both come here, so their reasons and warnings cannot drift apart.
    """
    report.rows_read += 1
    values = row.values
    try:
        if row.problems:
            raise FieldError("", "; ".join(row.problems))
        if mapping is not None:
            values = mapping.apply(values, spec.file)
        stored, warnings = checker.check(values)
    except FieldError as e:
        report.quarantined += 1
        quarantined.append(
            {
                "package_id": package_id,
                "file": label,
                "line": row.line,
                "record_id": mask_text(readable(_record_id(values))),
                "field": e.field,
                "reason": mask_text(readable(str(e), limit=1000)),
                "row_masked": masked_row(values, row.raw),
            }
        )
        return
    report.accepted += 1
    stored["package_id"] = package_id
    stored["line"] = row.line
    known = spec.name_set
    extra = {k: v for k, v in values.items() if k not in known and v}
    stored["extra"] = mask_text(json.dumps(extra, ensure_ascii=False)) if extra else None
    accepted.append(stored)
    for w in warnings:
        report.warnings += 1
        warned.append(
            {
                "package_id": package_id,
                "file": label,
                "line": row.line,
                "record_id": _record_id(values),
                "field": w.field,
                "message": mask_text(str(w)),
            }
        )
