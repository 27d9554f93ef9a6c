"""The columns of every input file, declared once, and the rules that check a row.

A row breaking a rule of a *required* or *strict* column is quarantined with a
reason naming the field. A malformed optional value (say a date of birth of
31 February) does not cost the lead: the value is blanked and a warning is kept
with its line and field, so nothing is lost and nothing false is believed.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ore.ingest.cards import CardError, Tokeniser, card_digits, hide_number, mask

Kind = Literal["text", "datetime", "date", "amount", "card", "choice", "bool", "count", "expiry", "ip", "country"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "text"
    required: bool = False
    strict: bool = False  # a bad value quarantines the row even when the column is optional
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileSpec:
    """One input file: its table, its columns, the column unique within it."""

    file: str
    table: str
    columns: tuple[Column, ...]
    unique: str | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def name_set(self) -> frozenset[str]:
        """The column names as a set, for a membership test per field of every row."""
        return frozenset(c.name for c in self.columns)


LEADS = FileSpec(
    "leads.csv",
    "leads",
    (
        Column("record_id", required=True),
        Column("transaction_id"),
        Column("transaction_time", "datetime", required=True),
        Column("merchant"),
        Column("product"),
        Column("product_category", "choice", strict=True, choices=("abuse", "adult", "unknown")),
        Column("amount", "amount", strict=True),
        Column("currency"),
        Column("status", "choice", strict=True, choices=("approved", "declined", "refunded", "chargeback")),
        Column("card_number", "card", required=True),
        Column("card_expiry", "expiry"),
        Column("cardholder_name"),
        Column("first_name"),
        Column("last_name"),
        Column("date_of_birth", "date"),
        Column("email"),
        Column("username"),
        Column("address_line1"),
        Column("address_line2"),
        Column("town"),
        Column("postcode"),
        Column("country", "country"),
        Column("ip_address", "ip"),
        Column("ip_country", "country"),
        Column("phone"),
    ),
    unique="record_id",
)

VISITS = FileSpec(
    "visits.csv",
    "visits",
    (
        Column("username", required=True),
        Column("visit_time", "datetime", required=True),
        Column("ip_address", "ip"),
        Column("product"),
    ),
)

_DOB = Column("date_of_birth", "date")
REFERENCE = (
    FileSpec(
        "register.csv",
        "ref_register",
        (
            Column("register_id", required=True),
            Column("first_name"),
            Column("last_name"),
            _DOB,
            Column("address_line1"),
            Column("town"),
            Column("postcode"),
            Column("registered_on", "date"),
            Column("offence_type", "choice", choices=("contact", "non_contact", "online")),
            Column("risk_level", "choice", choices=("very_high", "high", "medium", "low")),
        ),
        unique="register_id",
    ),
    FileSpec(
        "convictions.csv",
        "ref_convictions",
        (
            Column("conviction_ref", required=True),
            Column("first_name"),
            Column("last_name"),
            _DOB,
            Column("postcode"),
            Column("offence_date", "date"),
            Column(
                "offence_category",
                "choice",
                choices=("sexual_contact_child", "sexual_contact_adult", "iioc", "violence", "other"),
            ),
            Column("disposal"),
        ),
        unique="conviction_ref",
    ),
    FileSpec(
        "employment.csv",
        "ref_employment",
        (
            Column("employment_ref", required=True),
            Column("first_name"),
            Column("last_name"),
            _DOB,
            Column("postcode"),
            Column("employer"),
            Column("occupation"),
            Column(
                "sector",
                "choice",
                choices=("education", "childcare", "youth", "health", "social_care", "faith", "other"),
            ),
            Column("works_with_children", "bool"),
        ),
        unique="employment_ref",
    ),
    FileSpec(
        "households.csv",
        "ref_households",
        (
            Column("address_line1"),
            Column("postcode", required=True),
            Column("children_under_18", "count", strict=True),
        ),
    ),
    FileSpec(
        "card_alerts.csv",
        "ref_card_alerts",
        (
            Column("card_number", "card", required=True),
            Column("reported_on", "date", required=True),
            Column("alert_type", "choice", choices=("lost", "stolen", "compromised", "disputed")),
        ),
    ),
    FileSpec(
        "open_cases.csv",
        "ref_open_cases",
        (
            Column("case_ref", required=True),
            Column("force_code"),
            Column("first_name"),
            Column("last_name"),
            _DOB,
            Column("postcode"),
            Column("opened_on", "date"),
            Column("subject"),
        ),
        unique="case_ref",
    ),
    FileSpec(
        "postcode_forces.csv",
        "ref_postcode_forces",
        (
            Column("prefix", required=True),
            Column("force_code", required=True),
            Column("force_name"),
        ),
        unique="prefix",
    ),
)

# SQL types of the stored columns; a card column is stored as token, key version and masked parts.
SQL_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "datetime": "TIMESTAMP",
    "date": "DATE",
    "amount": "DOUBLE",
    "choice": "VARCHAR",
    "bool": "BOOLEAN",
    "count": "INTEGER",
    "expiry": "VARCHAR",
    "ip": "VARCHAR",
    "country": "VARCHAR",
}
CARD_COLUMNS = (("card_token", "VARCHAR"), ("card_key_version", "INTEGER"), ("card_masked", "VARCHAR"),
                ("card_last4", "VARCHAR"))


def stored_columns(spec: FileSpec) -> list[tuple[str, str]]:
    """(name, SQL type) of a spec's stored columns, in order."""
    out: list[tuple[str, str]] = []
    for c in spec.columns:
        out.extend(CARD_COLUMNS if c.kind == "card" else [(c.name, SQL_TYPES[c.kind])])
    return out


class FieldError(ValueError):
    """A value that breaks its column's rule; ``field`` names the column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_EXPIRY = re.compile(r"(0[1-9]|1[0-2])/[0-9]{2}")  # fullmatch; [0-9], since \d takes any script's digits
MAX_COUNT = 10_000  # a count (children in a household) beyond this is a typo, and would overflow INTEGER later
_COUNTRY = re.compile(r"[A-Z]{2}")  # fullmatch
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date-time or date; aware times are converted to UTC and made naive."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass
class RowChecker:
    """Checks rows of one file against its spec; holds what must be unique across rows."""

    spec: FileSpec
    tokeniser: Tokeniser
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    seen: set[str] = field(default_factory=set)

    def check(self, values: dict[str, str]) -> tuple[dict[str, Any], list[FieldError]]:
        """The stored values of a row and the warnings on optional fields; raises FieldError to quarantine."""
        out: dict[str, Any] = {}
        warnings: list[FieldError] = []
        digits: str | None = None  # the card number of the row, to mask wherever else it was typed
        for col in self.spec.columns:
            raw = (values.get(col.name) or "").strip()
            if not raw:
                if col.required:
                    raise FieldError(col.name, f"{col.name} is missing")
                if col.kind == "card":
                    out.update(card_token=None, card_key_version=None, card_masked=None, card_last4=None)
                else:
                    out[col.name] = None
                continue
            if col.kind == "text":  # most columns: kept as typed, without a call per value
                out[col.name] = raw
                continue
            try:
                digits = self._convert(col, raw, out) or digits
            except FieldError as e:
                if col.required or col.strict:
                    raise
                warnings.append(e)
                out[col.name] = None
        if digits:
            self._hide_card_elsewhere(digits, out)
        key = self.spec.unique
        if key is not None:
            k = out[key]
            if k in self.seen:
                raise FieldError(key, f"{key} {k!r} appears more than once (first occurrence kept)")
            self.seen.add(k)
        return out, warnings

    def _hide_card_elsewhere(self, digits: str, out: dict[str, Any]) -> None:
        """Mask the row's card number where a sender also typed it into a free-text column."""
        for col in self.spec.columns:
            if col.kind == "text" and out[col.name]:
                out[col.name] = hide_number(out[col.name], digits)

    def _convert(self, col: Column, raw: str, out: dict[str, Any]) -> str | None:
        """Store ``raw`` converted in ``out``; for a card column, return its digits (never stored)."""
        name = col.name
        kind = col.kind
        if kind == "text":
            out[name] = raw
        elif kind == "card":
            try:
                digits = card_digits(raw)
            except CardError as e:
                raise FieldError(name, str(e)) from None
            out.update(
                card_token=self.tokeniser.token(digits),
                card_key_version=self.tokeniser.version,
                card_masked=mask(digits),
                card_last4=digits[-4:],
            )
            return digits
        elif kind == "datetime":
            try:
                value = parse_datetime(raw)
            except (ValueError, OverflowError):  # OverflowError: an offset that moves year 1 or 9999 out of range
                raise FieldError(name, f"{name} {raw!r} is not an ISO 8601 date-time") from None
            self._not_future(name, value)
            out[name] = value
        elif kind == "date":
            try:
                value_d = date.fromisoformat(raw)
            except ValueError:
                raise FieldError(name, f"{name} {raw!r} is not an ISO date (YYYY-MM-DD)") from None
            if value_d > self.now.date():
                raise FieldError(name, f"{name} {raw} is in the future")
            out[name] = value_d
        elif kind == "amount":
            try:
                number = Decimal(raw)
            except InvalidOperation:
                raise FieldError(name, f"{name} {raw!r} is not a number") from None
            # checked again as stored: 1e-999 is positive as a Decimal but 0.0 as a DOUBLE, 1e999 infinite
            stored = float(number) if number.is_finite() else math.nan
            if not math.isfinite(stored) or stored <= 0:
                raise FieldError(name, f"{name} {raw!r} is not a positive finite number")
            out[name] = stored
        elif kind == "choice":
            value_c = raw.lower()
            if value_c not in col.choices:
                raise FieldError(name, f"{name} {raw!r} is not one of {', '.join(col.choices)}")
            out[name] = value_c
        elif kind == "bool":
            low = raw.lower()
            if low not in _TRUE | _FALSE:
                raise FieldError(name, f"{name} {raw!r} is not true or false")
            out[name] = low in _TRUE
        elif kind == "count":
            # isascii: '²' is a digit to str.isdigit() but not to int(); the bound keeps it in an INTEGER
            if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_COUNT:
                raise FieldError(name, f"{name} {raw!r} is not a whole number from 0 to {MAX_COUNT}")
            out[name] = int(raw)
        elif kind == "expiry":
            if not _EXPIRY.fullmatch(raw):
                raise FieldError(name, f"{name} {raw!r} is not MM/YY")
            out[name] = raw
        elif kind == "ip":
            if _IPV4.fullmatch(raw):  # the common case, without building an address object
                out[name] = raw
                return None
            try:
                out[name] = str(ipaddress.ip_address(raw))
            except ValueError:
                raise FieldError(name, f"{name} {raw!r} is not an IPv4 or IPv6 address") from None
        elif kind == "country":
            up = raw.upper()
            if not (up.isascii() and _COUNTRY.fullmatch(up)):  # 'ß'.upper() is 'SS'
                raise FieldError(name, f"{name} {raw!r} is not an ISO 3166-1 alpha-2 code")
            out[name] = up
        else:  # pragma: no cover - the Kind literal is closed
            raise AssertionError(kind)

    def _not_future(self, name: str, value: datetime) -> None:
        if value > self.now:
            raise FieldError(name, f"{name} {value.isoformat()} is in the future")
