"""Proposing a column mapping for an unknown export (``ore ingest --suggest-mapping FILE``).

Headers are matched to canonical columns by normalised-name similarity
(rapidfuzz) and a synonyms table (``mappings/synonyms.yaml``); a sample of the
values confirms or vetoes each match (a card column holds Luhn-valid numbers, a
date column parses) and tells how the values are written: date formats (day- or
month-first, 12-hour clock, two-digit years), a ``SURNAME, FIRST`` name column,
currency signs, capitalised statuses. The result is YAML that ``load_mapping``
accepts, with comments giving the confidence of each line and what was left
unmatched. It is a proposal for an analyst to check, never applied by itself.
No value of the file is printed except the words of status and category columns.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz

from ore.config import get_settings
from ore.errors import OreError
from ore.ingest.cards import CardError, card_digits
from ore.ingest.mapping import _Loader, default_pivot, parse_with
from ore.ingest.schema import LEADS
from ore.ingest.sources import open_rows

SAMPLE_ROWS = 2_000
DATE_SAMPLE = 400
MATCH = 75  # least score (0-100 and bonuses) for a header to be proposed for a column
FULL_NAME = "full_name"
CANONICAL = {c.name: c for c in LEADS.columns}

_CURRENCY_SIGNS = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₹": "INR"}


@cache
def synonyms() -> dict[str, Any]:
    path = Path(__file__).parent / "mappings" / "synonyms.yaml"
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - strings only


def normalise(header: str) -> str:
    """``CC_Number`` / ``ccNumber`` / ``CC-Number`` -> ``cc number``."""
    text = unicodedata.normalize("NFKC", header)
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    text = re.sub(r"[^0-9a-zA-Z]+", " ", text.lower())
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------------
# What the values look like


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXPIRY = re.compile(r"^(0[1-9]|1[0-2])/\d{2}$")
_CC2 = re.compile(r"^[A-Za-z]{2}$")
_SURNAME_FIRST = re.compile(r"^[^,]+,\s*[^,]+$")
_TWO_WORDS = re.compile(r"^\S+(\s+\S+)+$")
_AMOUNT = re.compile(r"[-+(]?\s*\d{1,3}([,.\s\u00a0]?\d{3})*([.,]\d+)?\)?|[-+]?\d+([.,]\d+)?")
_DATE_SHAPE = re.compile(
    r"^(\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{1,2}[ \-][A-Za-z]{3,9}[ \-,]+\d{2,4}|[A-Za-z]{3,9} \d{1,2},? \d{4}"
    r"|(19|20)\d\d(0[1-9]|1[0-2])[0-3]\d)([ T]\d{1,2}[:.]\d{2}.*)?$"
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?$")


def _is_card(v: str) -> bool:
    try:
        card_digits(v)
    except CardError:
        return False
    return True


def _is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _is_amount(v: str) -> bool:
    s = "".join(ch for ch in v if unicodedata.category(ch) != "Sc").strip()
    s = re.sub(r"^[A-Z]{3}\s*|\s*[A-Z]{3}$", "", s)
    return bool(_AMOUNT.fullmatch(s))


@dataclass
class Profile:
    """A source column: its header and what its sampled values look like (fractions of non-empty values)."""

    header: str
    values: list[str]
    looks: dict[str, float] = field(default_factory=dict)

    def frac(self, test: Any) -> float:
        if not self.values:
            return 0.0
        return sum(1 for v in self.values if test(v)) / len(self.values)


def profile(header: str, values: list[str]) -> Profile:
    p = Profile(header, values)
    sample = values[:DATE_SAMPLE]
    sp = Profile(header, sample)
    p.looks = {
        "card": sp.frac(_is_card),
        "ip": sp.frac(_is_ip),
        "email": sp.frac(lambda v: bool(_EMAIL.match(v))),
        "expiry": sp.frac(lambda v: bool(_EXPIRY.match(v))),
        "cc2": sp.frac(lambda v: bool(_CC2.match(v))),
        "amount": sp.frac(_is_amount),
        "date": sp.frac(lambda v: bool(_DATE_SHAPE.match(v))),
        "surname_first": sp.frac(lambda v: bool(_SURNAME_FIRST.match(v)) and not any(c.isdigit() for c in v)),
        "two_words": sp.frac(lambda v: bool(_TWO_WORDS.match(v)) and not any(c.isdigit() for c in v)),
    }
    for choice_col in ("status", "product_category"):
        table = _value_table(choice_col)
        p.looks[choice_col] = sp.frac(lambda v, t=table: v.strip().casefold() in t)
    return p


@cache
def _value_table(column: str) -> dict[str, str]:
    """Folded value word -> canonical choice, for a choice column."""
    table: dict[str, str] = {}
    for choice, words in synonyms()["values"].get(column, {}).items():
        table[choice.casefold()] = choice
        for w in words:
            table[w.casefold()] = choice
    return table


# Evidence from the values for (or against) each canonical column: (look, bonus when it fits, penalty when not)
_EVIDENCE: dict[str, tuple[str, int, int]] = {
    "card_number": ("card", 20, -60),
    "ip_address": ("ip", 20, -60),
    "email": ("email", 20, -60),
    "card_expiry": ("expiry", 20, -60),
    "transaction_time": ("date", 15, -60),
    "date_of_birth": ("date", 15, -60),
    "amount": ("amount", 15, -60),
    "country": ("cc2", 10, -30),
    "ip_country": ("cc2", 10, -30),
    "status": ("status", 20, -10),
    "product_category": ("product_category", 20, -10),
    FULL_NAME: ("two_words", 10, -40),
}
_TYPED = ("card", "ip", "email", "expiry", "date")  # not amount: ids are often plain numbers


def _name_score(norm: str, target: str) -> tuple[float, str]:
    """Best similarity of a normalised header to a canonical column's name and synonyms, with the word that matched."""
    names = [target.replace("_", " "), *synonyms()["headers"].get(target, [])]
    best, word = 0.0, ""
    for n in names:
        n = normalise(n)
        s = 100.0 if norm == n else max(fuzz.ratio(norm, n), fuzz.token_sort_ratio(norm, n) - 5)
        if s > best:
            best, word = s, n
    return best, word


@dataclass
class Match:
    header: str
    target: str
    score: float
    reason: str


def _candidates(profiles: list[Profile]) -> list[Match]:
    out: list[Match] = []
    targets = [*CANONICAL, FULL_NAME]
    for p in profiles:
        norm = normalise(p.header)
        for t in targets:
            name, word = _name_score(norm, t)
            reason = "same name" if name == 100 and word == t.replace("_", " ") else (
                f"synonym {word!r}" if name == 100 else f"name like {word!r} ({name:.0f})")
            score = name
            ev = _EVIDENCE.get(t)
            if p.values and ev is not None:
                look, bonus, penalty = ev
                frac = p.looks.get(look, 0.0)
                if frac >= 0.8:
                    score += bonus
                    reason += f"; values fit ({frac:.0%})"
                elif frac < 0.5:
                    score += penalty
                    reason += f"; values do not fit ({frac:.0%})"
            elif p.values and t not in _EVIDENCE:
                typed = [k for k in _TYPED if p.looks.get(k, 0) >= 0.9]
                if typed and CANONICAL.get(t) is not None and CANONICAL[t].kind == "text":
                    score -= 30
                    reason += f"; values look like {typed[0]}"
            if name < 60 and p.values:  # no name evidence: a strongly typed column can still be found by its values
                look = ev[0] if ev else None
                if look in ("card", "ip", "email", "expiry") and p.looks.get(look, 0) >= 0.95:
                    score, reason = 80.0, f"by values only ({p.looks[look]:.0%} look like {look})"
            out.append(Match(p.header, t, score, reason))
    return out


def assign(profiles: list[Profile]) -> dict[str, Match]:
    """Canonical column -> the source header proposed for it, best scores first, each header used once."""
    chosen: dict[str, Match] = {}
    used: set[str] = set()
    for m in sorted(_candidates(profiles), key=lambda m: -m.score):
        if m.score < MATCH or m.target in chosen or m.header in used:
            continue
        chosen[m.target] = m
        used.add(m.header)
    return chosen


# ----------------------------------------------------------------------------------------------
# Date formats


_DATES = [
    "%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%m-%d-%Y", "%d-%m-%Y",
    "%d-%b-%Y", "%d %b %Y", "%b %d %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y", "%Y%m%d",
    "%m/%d/%y", "%d/%m/%y", "%d.%m.%y", "%d-%b-%y", "%m-%d-%y", "%d-%m-%y",
]
_TIMES = ["", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", " %I:%M%p", "T%H:%M:%S", "T%H:%M"]


def _order(fmt: str) -> str | None:
    """'mdy' or 'dmy' for formats whose day and month are both numbers, else None."""
    m, d = fmt.find("%m"), fmt.find("%d")
    if m < 0 or d < 0 or fmt.find("%Y") == 0 or fmt.find("%y") == 0:
        return None
    return "mdy" if m < d else "dmy"


def _twin(fmt: str) -> str:
    return fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")


@dataclass
class DateGuess:
    formats: list[str]
    covered: int
    total: int
    order: str | None = None
    ambiguous: bool = False
    iso: bool = False


def sniff_dates(values: list[str], prefer: str | None = None) -> DateGuess | None:
    """The formats that read the sampled values, fewest first; None if nothing reads most of them."""
    sample = list(dict.fromkeys(values))[:DATE_SAMPLE]
    if not sample:
        return None
    if all(_ISO.match(v) for v in sample):
        return DateGuess(["iso"], len(sample), len(sample), iso=True)
    pivot = default_pivot()
    reads: dict[str, set[int]] = {}
    for d in _DATES:
        for t in _TIMES:
            fmt = d + t
            ok = {i for i, v in enumerate(sample[:20]) if parse_with(v, [fmt], pivot) is not None}
            if not ok:
                continue
            reads[fmt] = {i for i, v in enumerate(sample) if parse_with(v, [fmt], pivot) is not None}
    if not reads:
        return None
    left = set(range(len(sample)))
    chosen: list[str] = []
    order: str | None = None
    while left and len(chosen) < 4:
        def rank(f: str) -> tuple[int, int, int]:
            o = _order(f)
            fits_order = 1 if (o is None or order is None and (prefer is None or o == prefer) or o == order) else 0
            return (len(reads[f] & left), fits_order, -len(f))

        options = [f for f in reads if reads[f] & left and (order is None or _order(f) in (None, order))]
        if not options:
            break
        best = max(options, key=rank)
        chosen.append(best)
        order = order or _order(best)
        left -= reads[best]
    covered = len(sample) - len(left)
    if covered < 0.8 * len(sample):
        return None
    ambiguous = bool(order) and all(
        reads.get(_twin(f), set()) >= reads[f] for f in chosen if _order(f)
    )
    return DateGuess(chosen, covered, len(sample), order, ambiguous)


# ----------------------------------------------------------------------------------------------
# Writing the YAML


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _read_sample(path: Path) -> tuple[list[str], list[dict[str, str]], bool]:
    s = get_settings()
    header, rows, close = open_rows(path, s.max_field_chars, s.max_package_bytes, s.max_archive_entries,
                                    max_ratio=s.max_compression_ratio)
    try:
        sample = [r.values for r in islice(rows, SAMPLE_ROWS)]
        more = next(rows, None) is not None
    finally:
        close()
    return header, sample, more


def suggest_mapping(path: Path) -> str:
    if not path.is_file():
        raise OreError(f"{path}: no such file")
    header, sample, more = _read_sample(path)
    profiles = [profile(h, [(r.get(h) or "").strip() for r in sample if (r.get(h) or "").strip()]) for h in header]
    by_header = {p.header: p for p in profiles}
    chosen = assign(profiles)
    notes: list[str] = []

    # one name column split into first and last names, unless the export has both already
    split_match = chosen.pop(FULL_NAME, None)
    if split_match and ("first_name" in chosen or "last_name" in chosen):
        notes.append(f"{split_match.header!r} looks like a full name, but first/last names are mapped already")
        split_match = None

    # dates: decide day- or month-first on the whole file, so an ambiguous column follows a clear one
    guesses: dict[str, DateGuess | None] = {}
    for col in ("transaction_time", "date_of_birth"):
        if col in chosen:
            guesses[col] = sniff_dates(by_header[chosen[col].header].values)
    orders = {g.order for g in guesses.values() if g and g.order and not g.ambiguous}
    if len(orders) == 1:
        prefer = orders.pop()
        for col, g in guesses.items():
            if g and g.ambiguous:
                guesses[col] = sniff_dates(by_header[chosen[col].header].values, prefer)
                if guesses[col] is not None:
                    guesses[col].ambiguous = False  # type: ignore[union-attr]

    lines = [
        f"# Column mapping suggested by `ore ingest --suggest-mapping` for {path.name}",
        f"# from its header and {'the first ' if more else ''}{len(sample):,} rows. A proposal: check every line",
        "# before use (docs/mapping.md). Confidence 100 = the header is the column's name or a known",
        "# synonym and the values fit; lower = a similar name only.",
        "version: 1",
        f"description: {_q('suggested for ' + path.name)}",
        "columns:",
    ]
    currency_note: str | None = None
    for name in CANONICAL:
        m = chosen.get(name)
        if m is None:
            continue
        conf = min(100, round(m.score))
        comment = f"# {conf}: {m.reason}"
        p = by_header[m.header]
        opts: list[tuple[str, str]] = []
        extra: list[str] = []
        if name in guesses:
            g = guesses[name]
            if g is None:
                extra.append("date format not recognised: add formats by hand")
            elif not g.iso:
                opts.append(("formats", _flow(g.formats)))
                extra.append(f"formats read {g.covered}/{g.total} distinct sampled values")
                if g.ambiguous:
                    extra.append("AMBIGUOUS: every sampled value fits both day-first and month-first: check")
                if any("%y" in f for f in g.formats):
                    pv = default_pivot()
                    extra.append(f"two-digit years 00-{pv:02d} read as 20xx, later as 19xx (year_pivot)")
        if name == "amount" and p.values:
            signs = Counter(ch for v in p.values for ch in v if unicodedata.category(ch) == "Sc")
            codes = Counter(m_.group(0) for v in p.values for m_ in [re.search(r"[A-Z]{3}", v)] if m_)
            comma_decimal = sum(1 for v in p.values if re.search(r",\d{1,2}$", v.strip()))
            if comma_decimal > 0.5 * len(p.values):
                opts.append(("amount", '{thousands: ".", decimal: ","}'))
                extra.append("decimal commas")
            elif any(not re.fullmatch(r"[-+]?\d*\.?\d+", v) for v in p.values if any(c.isdigit() for c in v)):
                opts.append(("amount", '{thousands: ",", decimal: "."}'))
            if signs or codes:
                extra.append("currency signs stripped")
            if "currency" not in chosen:
                kinds = set(signs) | set(codes)
                if len(kinds) == 1:
                    k = kinds.pop()
                    code = _CURRENCY_SIGNS.get(k, k if len(k) == 3 else None)
                    if code:
                        currency_note = code
                        extra.append(f"every amount carries {k!r}")
                elif len(kinds) > 1:
                    notes.append(f"amounts carry several currencies ({', '.join(sorted(kinds))}): "
                                 "map currency by hand")
        if name in ("status", "product_category") and p.values:
            table = _value_table(name)
            choices = CANONICAL[name].choices
            distinct = sorted(set(p.values))
            mapped = {v: table[v.casefold()] for v in distinct if v.casefold() in table and v != table[v.casefold()]}
            unknown = [v for v in distinct if v.casefold() not in table]
            if mapped and all(v.lower() == c for v, c in mapped.items()):
                opts.append(("case", "lower"))
            elif mapped:
                opts.append(("values", "{" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in mapped.items()) + "}"))
            if unknown:
                shown = ", ".join(repr(v) for v in unknown[:8])
                extra.append(f"values not understood, map them by hand (allowed: {', '.join(choices)}): {shown}")
        if extra:
            comment += "; " + "; ".join(extra)
        if opts:
            lines.append(f"  {name}:  {comment}")
            lines.append(f"    from: {_q(m.header)}")
            lines.extend(f"    {k}: {v}" for k, v in opts)
        else:
            lines.append(f"  {name}: {_q(m.header)}  {comment}")
    if currency_note:
        caveat = " ($ is also CAD, AUD, ...)" if currency_note == "USD" else ""
        lines.append(f"  currency: {{value: {_q(currency_note)}}}  # from the sign on the amounts: check{caveat}")
    if split_match:
        p = by_header[split_match.header]
        comma = p.looks.get("surname_first", 0.0)
        letters = [v for v in p.values if any(c.isalpha() for c in v)]
        upper = sum(1 for v in letters if v == v.upper()) / len(letters) if letters else 0.0
        lower = sum(1 for v in letters if v == v.lower()) / len(letters) if letters else 0.0
        lines.append("split:")
        lines.append(f"  - from: {_q(split_match.header)}  # {min(100, round(split_match.score))}: "
                     f"{split_match.reason}; {comma:.0%} written 'SURNAME, FIRST'")
        lines.append(f"    patterns: {_flow(['{last_name}, {first_name}', '{first_name} {last_name}'])}")
        if upper >= 0.9 or lower >= 0.9:
            lines.append(f"    case: title  # {max(upper, lower):.0%} of the names are all in "
                         f"{'capitals' if upper >= lower else 'lower case'}")
    if not chosen:
        lines.append("  {}  # nothing matched: write the mapping by hand")
    missing = [c for c in CANONICAL if c not in chosen and not (c == "currency" and currency_note)
               and not (split_match and c in ("first_name", "last_name"))]
    used = {m.header for m in chosen.values()} | ({split_match.header} if split_match else set())
    unmatched = [h for h in header if h not in used]
    lines.append("")
    if missing:
        lines.append(f"# Columns not found in the export (left empty): {', '.join(missing)}")
        required = [c for c in missing if CANONICAL[c].required]
        if required:
            lines.append(f"# REQUIRED and not found: {', '.join(required)}: map them, or every row is quarantined")
    if unmatched:
        lines.append("# Source columns not matched (kept as extra columns under their own names): "
                     + ", ".join(repr(h) for h in unmatched))
    for n in notes:
        lines.append(f"# Note: {n}")
    return "\n".join(lines) + "\n"


__all__ = ["suggest_mapping", "sniff_dates", "assign", "profile", "normalise"]
