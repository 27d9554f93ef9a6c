"""Column mappings: bring a foreign export's rows to the canonical ``leads.csv`` columns.

A mapping is a YAML file an analyst can write by hand (format in docs/mapping.md):
which source header feeds each canonical column, how its dates are written, how
a full-name column splits into first and last names, which constants to set and
which values to translate. ``load_mapping`` checks the file and compiles it; the
result's ``apply`` turns one source row into canonical strings, which the usual
row checks then accept or quarantine. Unmapped source columns pass through under
their own names, so nothing the originator sent is lost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ore.errors import OreError, PackageRejected
from ore.ingest.cards import mask_text
from ore.ingest.schema import LEADS, FieldError, parse_datetime

FORMAT_VERSION = 1
CANONICAL = {c.name: c for c in LEADS.columns}
EXAMPLES = Path(__file__).parent / "mappings"


class MappingError(OreError):
    """A mapping file that cannot be used; the message names the file, the key and what is wrong."""


# ----------------------------------------------------------------------------------------------
# The YAML file, as pydantic models


Case = Literal["lower", "upper", "title", "keep"]

_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXGuV%")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _as_rule(value: Any) -> Any:
    """``canonical: Source Header`` is short for ``canonical: {from: Source Header}``."""
    return {"from": value} if isinstance(value, str) else value


def _check_formats(formats: list[str]) -> list[str]:
    if not formats:
        raise ValueError("give at least one format, e.g. '%d/%m/%Y %H:%M' or 'iso'")
    for fmt in formats:
        if fmt == "iso":
            continue
        directives = re.findall(r"%(.?)", fmt)
        if not directives:
            raise ValueError(f"{fmt!r} has no %-directive (write strptime codes such as %d/%m/%Y, or 'iso')")
        bad = [d for d in directives if d not in _DIRECTIVES]
        if bad:
            raise ValueError(f"{fmt!r}: %{bad[0]} is not a strptime directive")
    return formats


class AmountRule(BaseModel):
    """How an amount is written: currency signs and codes are always stripped."""

    model_config = ConfigDict(extra="forbid")

    thousands: str = ","
    decimal: str = "."

    @model_validator(mode="after")
    def _distinct(self) -> AmountRule:
        if self.decimal not in (".", ","):
            raise ValueError("decimal must be '.' or ','")
        if self.thousands == self.decimal:
            raise ValueError("thousands and decimal separators must differ")
        if len(self.thousands) > 1:
            raise ValueError("thousands must be one character (or empty)")
        return self


def _as_amount(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on"):
        return {}
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off"):
        return None
    return value


class ColumnRule(BaseModel):
    """Where one canonical column comes from and how its values are converted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str | None = Field(None, alias="from")
    value: str | None = None
    default: str | None = None
    formats: Annotated[list[str] | None, BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = None
    year_pivot: int | None = Field(None, ge=0, le=99)
    timezone: str | None = None
    amount: Annotated[AmountRule | None, BeforeValidator(_as_amount)] = None
    values: dict[str, str] | None = None
    case: Case | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ColumnRule:
        if self.source is None and self.value is None:
            raise ValueError("give 'from' (a source header) or 'value' (a constant)")
        if self.source is not None and self.value is not None:
            raise ValueError("give 'from' or 'value', not both")
        if self.value is not None and (self.default is not None or self.formats or self.amount or self.values):
            raise ValueError("a constant ('value') takes no other options")
        return self

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_formats(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{v!r} is not a known time zone (e.g. America/New_York)") from None
        return v


class SplitRule(BaseModel):
    """One source column split into several by the first pattern that fits."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from")
    patterns: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = Field(
        min_length=1, alias="patterns"
    )
    case: Case | None = None

    @model_validator(mode="before")
    @classmethod
    def _pattern_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pattern" in data:
            if "patterns" in data:
                raise ValueError("give 'pattern' or 'patterns', not both")
            data = dict(data)
            data["patterns"] = data.pop("pattern")
        return data

    @field_validator("patterns")
    @classmethod
    def _valid_patterns(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            names = _PLACEHOLDER.findall(p)
            if not names:
                raise ValueError(f"pattern {p!r} has no {{field}} placeholder")
            if len(set(names)) != len(names):
                raise ValueError(f"pattern {p!r} names a field twice")
            if "}{" in p:
                raise ValueError(f"pattern {p!r}: two fields need some text between them")
            leftover = _PLACEHOLDER.sub("", p)
            if "{" in leftover or "}" in leftover:
                raise ValueError(f"pattern {p!r}: braces must hold a field name such as {{last_name}}")
        return patterns

    @property
    def targets(self) -> list[str]:
        seen: list[str] = []
        for p in self.patterns:
            for n in _PLACEHOLDER.findall(p):
                if n not in seen:
                    seen.append(n)
        return seen


class MappingFile(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(extra="forbid")

    version: int = FORMAT_VERSION
    description: str | None = None
    year_pivot: int | None = Field(None, ge=0, le=99)
    columns: dict[str, Annotated[ColumnRule, BeforeValidator(_as_rule)]] = Field(default_factory=dict)
    split: list[SplitRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> MappingFile:
        if self.version != FORMAT_VERSION:
            raise ValueError(f"version {self.version} is not supported (this ore reads version {FORMAT_VERSION})")
        return self


# ----------------------------------------------------------------------------------------------
# Loading and checking


MAX_DEPTH = 20  # a mapping nests four levels; deeper is a hostile file that would exhaust the stack


class _Loader(yaml.BaseLoader):
    """Every scalar is a string (no YAML 1.1 surprises such as NO -> false), and no key twice.

    Aliases (``*name``) are refused: a few lines of them expand into billions of nodes (the
    "billion laughs"), which checking would walk; a mapping has no use for them. Nesting is
    bounded so that a file of ``[[[[...`` is an error, not a crash of the recursive composer.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):  # type: ignore[no-untyped-call]
            event = self.get_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed in a mapping; write the value out",
                event.start_mark)
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, str):  # "? [a, b]: x" makes a list a key; a mapping's keys are words
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be plain text, not a list or a set of keys", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _lines(node: yaml.Node | None, path: tuple[Any, ...] = (), out: dict[tuple[Any, ...], int] | None = None
           ) -> dict[tuple[Any, ...], int]:
    """Line number (1-based) of every key path in the YAML tree, for error messages."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            p = (*path, k.value)
            out[p] = k.start_mark.line + 1
            _lines(v, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            p = (*path, i)
            out[p] = v.start_mark.line + 1
            _lines(v, p, out)
    return out


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_ALIASES = {"source": "from"}


def _yaml_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic's loc holds field names and union/validator tags; bring it back to YAML keys
    out: list[Any] = []
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part in ("ColumnRule", "AmountRule")):
            continue
        out.append(_ALIASES.get(part, part) if isinstance(part, str) else part)
    return tuple(out)


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _problem(where: str, lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...], message: str) -> str:
    line = _line_of(lines, loc)
    at = f"line {line}: " if line else ""
    return f"{where}: {at}{_dotted(loc)}: {message}"


def _semantic_problems(m: MappingFile) -> list[tuple[tuple[Any, ...], str]]:
    """What pydantic cannot see: canonical names, options that fit the column's kind, split targets."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for name, rule in m.columns.items():
        col = CANONICAL.get(name)
        if col is None:
            near = get_close_matches(name, list(CANONICAL), n=1)
            hint = f" (did you mean {near[0]}?)" if near else f"; the columns are: {', '.join(CANONICAL)}"
            problems.append((("columns", name), f"{name!r} is not a column of leads.csv{hint}"))
            continue
        if (rule.formats or rule.year_pivot is not None) and col.kind not in ("datetime", "date"):
            key = "formats" if rule.formats else "year_pivot"
            problems.append((("columns", name, key), f"{name} is not a date or date-time column"))
        if rule.timezone and col.kind != "datetime":
            problems.append((("columns", name, "timezone"), f"{name} is not a date-time column"))
        if rule.timezone and not rule.formats:
            problems.append((("columns", name, "timezone"), "a timezone needs 'formats' (ISO values carry their own offset)"))
        if rule.amount is not None and col.kind != "amount":
            problems.append((("columns", name, "amount"), f"{name} is not an amount column"))
    targets: dict[str, tuple[Any, ...]] = {}
    for i, s in enumerate(m.split):
        for t in s.targets:
            where = ("split", i, "patterns")
            if t in m.columns:
                problems.append((where, f"{t} is filled by both columns.{t} and this split"))
            elif t in targets:
                problems.append((where, f"{t} is filled by two splits"))
            targets[t] = where
    return problems


def parse_mapping(text: str, where: str = "mapping") -> MappingFile:
    """Check a mapping's YAML text; ``MappingError`` names ``where``, the line, the key and the fault."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a BaseLoader: strings only
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MappingError(f"{where}: {at}not valid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise MappingError(f"{where}: not valid YAML: {e}") from None
    if data is None or data == "":
        raise MappingError(f"{where}: the mapping is empty")
    if not isinstance(data, dict):
        raise MappingError(f"{where}: line 1: a mapping is a set of keys (columns:, split:, ...), not a {type(data).__name__}")
    lines = _lines(node)
    try:
        model = MappingFile.model_validate(data)
    except ValidationError as e:
        messages = []
        for err in e.errors():
            loc = _yaml_loc(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
                parent = loc[:-1]
                allowed = _allowed_keys(parent)
                if allowed:
                    near = get_close_matches(str(loc[-1]), allowed, n=1)
                    msg += f" (did you mean {near[0]}?)" if near else f" (allowed: {', '.join(allowed)})"
            elif err["type"] == "missing":
                msg = "required key is missing"
            elif loc and loc[-1] == "amount" and err["type"] in ("model_type", "dict_type"):
                msg = 'write true, or the separators: {thousands: ",", decimal: "."}'
            elif err["type"] in ("model_type", "dict_type"):
                msg = f"should be a set of keys (key: value), not {err.get('input')!r}"
            elif err["type"] in ("list_type",):
                msg = f"should be a list such as [a, b], not {err.get('input')!r}"
            messages.append(_problem(where, lines, loc, msg))
        raise MappingError("; ".join(messages)) from None
    problems = _semantic_problems(model)
    if problems:
        raise MappingError("; ".join(_problem(where, lines, loc, msg) for loc, msg in problems))
    return model


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    def keys(model: type[BaseModel]) -> list[str]:
        return [f.alias or n for n, f in model.model_fields.items()]

    if not parent:
        return keys(MappingFile)
    if parent[0] == "columns" and len(parent) == 2:
        return keys(ColumnRule)
    if parent[0] == "columns" and len(parent) == 3 and parent[2] == "amount":
        return keys(AmountRule)
    if parent[0] == "split" and len(parent) == 2:
        return [*keys(SplitRule), "pattern"]
    return []


def load_mapping(path: Path | str) -> ColumnMapping:
    """Read, check and compile a mapping file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MappingError(f"{path}: no such mapping file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError(f"{path}: cannot read the mapping ({e})") from None
    return ColumnMapping(parse_mapping(text, path.name), path.name)


def example(name: str) -> Path:
    """Path of a worked example mapping shipped with ore (``src/ore/ingest/mappings/NAME.yaml``)."""
    return EXAMPLES / f"{name}.yaml"


# ----------------------------------------------------------------------------------------------
# Value conversions


def title_name(text: str) -> str:
    """Title case for names: ``O'BRIEN`` -> ``O'Brien``, ``SMITH-JONES`` -> ``Smith-Jones``, ``MCDONALD`` -> ``McDonald``."""
    out = []
    upper_next = True
    for ch in text.lower():
        out.append(ch.upper() if upper_next else ch)
        upper_next = not ch.isalpha()
    titled = "".join(out)
    return re.sub(r"\bMc([a-z])", lambda m: "Mc" + m.group(1).upper(), titled)


_CASES: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": title_name,
    "keep": lambda s: s,
}


def clean_amount(text: str, thousands: str = ",", decimal: str = ".") -> str:
    """A plain decimal from ``$1,234.50``, ``1.234,50 €``, ``USD 29.95``, ``-£5``; unparseable text is left for the row check."""
    s = "".join(ch for ch in text if unicodedata.category(ch) != "Sc").strip()
    code = _CODED.fullmatch(s)  # an ISO 4217 code before or after the number
    if code:
        s = code.group(2)
    s = s.replace("\u00a0", "").replace(" ", "")
    if s.startswith("(") and s.endswith(")"):
        s = "-" + s[1:-1]
    if thousands:
        s = s.replace(thousands, "")
    if decimal != ".":
        s = s.replace(decimal, ".")
    if not _NUMBER.fullmatch(s):
        return text.strip()  # not an amount: the row check quarantines it showing what was sent
    return s


_CODED = re.compile(r"([A-Z]{3})?\s*([-+(]?[\d.,\s\u00a0]*\d[\d.,\s\u00a0]*\)?)\s*([A-Z]{3})?")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)")


def default_pivot(today: date | None = None) -> int:
    """Two-digit years up to this one are 20yy, later ones 19yy: no date lands in the future."""
    return (today or datetime.now(UTC).date()).year % 100


def parse_with(raw: str, formats: list[str], pivot: int) -> datetime | None:
    """The first format that reads ``raw``; two-digit years resolved by ``pivot``; None if none fits."""
    for fmt in formats:
        if fmt == "iso":
            try:
                return parse_datetime(raw)
            except ValueError:
                continue
        try:
            value = datetime.strptime(raw, fmt)
        except ValueError:
            continue
        if "%y" in fmt:
            yy = value.year % 100
            try:
                value = value.replace(year=(2000 if yy <= pivot else 1900) + yy)
            except ValueError:  # 29 February of a year that is not a leap year in that century
                continue
        return value
    return None


class _Column:
    """One compiled canonical column: source, constant, and conversion steps."""

    def __init__(self, name: str, rule: ColumnRule, pivot: int) -> None:
        self.name = name
        self.kind = CANONICAL[name].kind
        self.strict = CANONICAL[name].required or CANONICAL[name].strict
        self.source = rule.source
        self.constant = rule.value
        self.default = rule.default
        self.formats = rule.formats
        self.pivot = rule.year_pivot if rule.year_pivot is not None else pivot
        self.zone = ZoneInfo(rule.timezone) if rule.timezone else None
        self.amount = rule.amount
        self.values = rule.values
        self.values_folded = {k.strip().casefold(): v for k, v in (rule.values or {}).items()}
        self.case = _CASES[rule.case] if rule.case else None

    def __call__(self, row: dict[str, str]) -> str:
        if self.constant is not None:
            return self.constant
        raw = (row.get(self.source or "") or "").strip()
        if not raw:
            return self.default or ""
        value = raw
        if self.values is not None:
            hit = self.values.get(value)
            if hit is None:
                hit = self.values_folded.get(value.casefold())
            if hit is not None:
                value = hit
        if self.amount is not None:
            value = clean_amount(value, self.amount.thousands, self.amount.decimal)
        if self.formats:
            value = self._date(value)
        if self.case is not None:
            value = self.case(value)
        return value

    def _date(self, raw: str) -> str:
        parsed = parse_with(raw, self.formats or [], self.pivot)
        if parsed is None:
            if not self.strict:
                return raw  # an optional date: the row check blanks it and keeps a warning
            shown = mask_text(raw)
            fmts = ", ".join(repr(f) for f in self.formats or [])
            raise FieldError(self.name, f"{self.name} {shown!r} does not match the mapping's formats ({fmts})")
        if self.kind == "date":
            return parsed.date().isoformat()
        if self.zone is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        return parsed.isoformat()


class _Split:
    """One source column split by patterns such as ``{last_name}, {first_name}``."""

    def __init__(self, rule: SplitRule) -> None:
        self.source = rule.source
        self.targets = rule.targets
        self.case = _CASES[rule.case] if rule.case else None
        self.patterns = [self._compile(p) for p in rule.patterns]

    @staticmethod
    def _compile(pattern: str) -> re.Pattern[str]:
        parts: list[str] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(pattern):
            parts.append(_literal(pattern[pos:m.start()]))
            parts.append(f"(?P<{m.group(1)}>.+)")
            pos = m.end()
        parts.append(_literal(pattern[pos:]))
        return re.compile("".join(parts), re.DOTALL)

    def __call__(self, row: dict[str, str]) -> dict[str, str] | None:
        """The split fields, or None when no pattern fits (the text is then kept under its own header)."""
        text = " ".join((row.get(self.source) or "").split())
        out = dict.fromkeys(self.targets, "")
        if not text:
            return out
        for pattern in self.patterns:
            m = pattern.fullmatch(text)
            if m:
                for k, v in m.groupdict().items():
                    v = v.strip()
                    out[k] = self.case(v) if self.case else v
                return out
        return None


def _literal(text: str) -> str:
    if not text:
        return ""
    if not text.strip():
        return r"\s+"
    return r"\s*" + r"\s+".join(re.escape(w) for w in text.split()) + r"\s*"


class ColumnMapping:
    """A checked, compiled mapping: the ``Mapping`` that ``ore.ingest.ingest`` applies to each row."""

    def __init__(self, model: MappingFile, name: str = "mapping") -> None:
        self.model = model
        self.name = name
        pivot = model.year_pivot if model.year_pivot is not None else default_pivot()
        self.columns = [_Column(n, r, pivot) for n, r in model.columns.items()]
        self.splits = [_Split(s) for s in model.split]
        self.produced = set(model.columns) | {t for s in self.splits for t in s.targets}
        self.consumed = {c.source for c in self.columns if c.source} | {s.source for s in self.splits}

    @property
    def sources(self) -> list[tuple[str, str]]:
        """(YAML key, source header) of every source column the mapping reads."""
        out = [(f"columns.{c.name}", c.source) for c in self.columns if c.source]
        out += [(f"split[{i}].from", s.source) for i, s in enumerate(self.splits)]
        return out

    def check_header(self, header: list[str], file: str) -> None:
        have = set(header)
        missing = [(key, src) for key, src in self.sources if src not in have]
        if missing:
            key, src = missing[0]
            near = get_close_matches(src, header, n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise PackageRejected(
                f"{file}: line 1: column {src!r} named by {self.name} ({key}) is not in the header{hint}{more}"
            )
        for col in LEADS.columns:
            if col.required and col.name not in self.produced and col.name not in have:
                raise PackageRejected(
                    f"{file}: line 1: required column {col.name} is neither in {self.name} nor in the header"
                )

    def apply(self, values: dict[str, str], file: str) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            for col in self.columns:
                out[col.name] = col(values)
        except FieldError:
            # The caller quarantines the row as read; give it the record id so the quarantine names the record.
            rid = next((c for c in self.columns if c.name == "record_id"), None)
            if rid is not None and "record_id" not in values:
                values["record_id"] = rid(values)
            raise
        unsplit: set[str] = set()
        for split in self.splits:
            parts = split(values)
            if parts is None:
                unsplit.add(split.source)
                parts = dict.fromkeys(split.targets, "")
            out.update(parts)
        for key, value in values.items():
            if key in self.consumed and key not in unsplit:
                continue
            out[key if key not in out else f"{key} (unmapped)"] = value
        return out


def suggest(path: Path | str) -> str:
    """A proposed mapping (YAML text with comments) for an unknown CSV or XLSX export."""
    from ore.ingest.suggest import suggest_mapping

    return suggest_mapping(Path(path))


__all__ = ["ColumnMapping", "MappingError", "MappingFile", "load_mapping", "parse_mapping", "suggest",
           "clean_amount", "title_name", "parse_with", "example"]
