"""The corroboration policy: indicator weights, thresholds, grade rules and sentences, as data.

The packaged ``policy.yaml`` is the default. A user file is merged over it key by key, so it
needs only the keys it changes. Every value is checked here, and an error names the key.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ore.errors import OreError

DEFAULT_POLICY = "policy.yaml"
SIDES = ("fraud", "cardholder")
LINKS = ("email", "username", "ip", "burst", "card_day")


class PolicyError(OreError):
    """The policy file is invalid; the message names the key."""


@dataclass(frozen=True)
class Tier:
    at_least: float
    weight: float


@dataclass(frozen=True)
class Indicator:
    code: str
    side: str
    group: str
    weight: float | None
    tiers: tuple[Tier, ...]
    params: dict[str, Any]
    sentence: str
    enabled: bool = True
    propagate: bool = False  # fraud side: also counts on the other records of the same card and account
    void_if: tuple[str, ...] = ()  # cardholder side: not counted where one of these fired on the record

    @property
    def threshold(self) -> float | None:
        """The count at which a tiered indicator fires (its first tier)."""
        return self.tiers[0].at_least if self.tiers else None


@dataclass(frozen=True)
class Policy:
    prior_log_odds: float
    fraud_threshold: float
    ip_prefix_octets: int
    rotating_proxy_min_ips: float
    indicators: dict[str, Indicator]
    fraud_share_above: float
    max_corroborated_clean_records: int
    min_cardholder_codes: int
    link_on: tuple[str, ...]
    min_records: int
    max_identifiers: int
    ip_hub_days: float
    source: str = "default"
    digest: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def enabled(self) -> list[Indicator]:
        return [i for i in self.indicators.values() if i.enabled]


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=1)
def _default_text() -> str:
    return resources.files("ore.corroborate").joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _default_parsed() -> dict[str, Any]:
    return yaml.load(_default_text(), Loader=_Loader)  # noqa: S506 - a safe loader


def _default_raw() -> dict[str, Any]:
    return copy.deepcopy(_default_parsed())


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def load_policy(path: Path | str | None = None) -> Policy:
    """The default policy, or a user file merged over it; validated."""
    raw = _default_raw()
    source = "default"
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise PolicyError(f"policy file {p}: cannot read it ({e.strerror or e})") from None
        try:
            user = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as e:
            raise PolicyError(f"policy file {p}: not valid YAML ({e})") from None
        if user is None:
            user = {}
        if not isinstance(user, dict):
            raise PolicyError(f"policy file {p}: must be a mapping of keys, not {type(user).__name__}")
        raw = _merge(raw, user)
        source = str(p)
    return parse_policy(raw, source)


# --- validation ------------------------------------------------------------------------------


def _num(raw: dict[str, Any], key: str, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if key not in raw:
        raise PolicyError(f"policy: {where}{key} is missing")
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise PolicyError(f"policy: {where}{key} must be a number, not {v!r}")
    if lo is not None and v < lo:
        raise PolicyError(f"policy: {where}{key} must be at least {lo}, not {v!r}")
    if hi is not None and v > hi:
        raise PolicyError(f"policy: {where}{key} must be at most {hi}, not {v!r}")
    return float(v)


def _int(raw: dict[str, Any], key: str, where: str, lo: int, hi: int | None = None) -> int:
    v = _num(raw, key, where, lo, hi)
    if v != int(v):
        raise PolicyError(f"policy: {where}{key} must be a whole number, not {raw[key]!r}")
    return int(v)


def _map(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PolicyError(f"policy: {where} must be a mapping, not {raw!r}")
    return raw


def _unknown(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise PolicyError(f"policy: {where}{extra[0]} is not a known key (known: {', '.join(sorted(allowed))})")


def _placeholders(sentence: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(sentence) if f is not None]
    except ValueError as e:
        raise PolicyError(f"bad sentence {sentence!r}: {e}") from None


def _indicator(code: str, raw: Any) -> Indicator:
    from ore.corroborate.indicators import SPECS  # the indicators the code knows

    where = f"indicators.{code}."
    raw = _map(raw, f"indicators.{code}")
    spec = SPECS.get(code)
    if spec is None:
        raise PolicyError(f"policy: indicators.{code} is not a known indicator (known: {', '.join(sorted(SPECS))})")
    _unknown(raw, {"side", "group", "weight", "tiers", "params", "sentence", "enabled", "propagate", "void_if"},
             where)
    side = raw.get("side")
    if side not in SIDES:
        raise PolicyError(f"policy: {where}side must be one of {', '.join(SIDES)}, not {side!r}")
    group = raw.get("group", code)
    if not isinstance(group, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", group):
        raise PolicyError(f"policy: {where}group must be a lower-case name, not {group!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyError(f"policy: {where}enabled must be true or false, not {enabled!r}")
    weight: float | None = None
    tiers: list[Tier] = []
    if spec.counted:
        if "weight" in raw and "tiers" not in raw:
            tiers = [Tier(spec.default_count, _num(raw, "weight", where))]
        else:
            if "weight" in raw:
                raise PolicyError(f"policy: {where}weight and {where}tiers are both given; give one")
            t = raw.get("tiers")
            if not isinstance(t, list) or not t:
                raise PolicyError(f"policy: {where}tiers must be a non-empty list of {{at_least, weight}}")
            for i, item in enumerate(t):
                w = f"{where}tiers[{i}]."
                item = _map(item, f"{where}tiers[{i}]")
                _unknown(item, {"at_least", "weight"}, w)
                tiers.append(Tier(_num(item, "at_least", w, lo=1), _num(item, "weight", w)))
            for a, b in zip(tiers, tiers[1:]):
                if b.at_least <= a.at_least:
                    raise PolicyError(f"policy: {where}tiers must have increasing at_least values")
        weights = [x.weight for x in tiers]
    else:
        if "tiers" in raw:
            raise PolicyError(f"policy: {where}tiers is not allowed: {code} has no count; give weight")
        weight = _num(raw, "weight", where)
        weights = [weight]
    for w in weights:
        if side == "fraud" and w < 0:
            raise PolicyError(f"policy: {where}weight must be >= 0 on side fraud (got {w})")
        if side == "cardholder" and w > 0:
            raise PolicyError(f"policy: {where}weight must be <= 0 on side cardholder (got {w})")
    params_raw = _map(raw.get("params", {}) or {}, f"{where}params")
    _unknown(params_raw, set(spec.params), f"{where}params.")
    params: dict[str, Any] = {}
    for name, (lo, default) in spec.params.items():
        if name in params_raw:
            params[name] = _num(params_raw, name, f"{where}params.", lo=lo)
        else:
            params[name] = float(default)
    sentence = raw.get("sentence")
    if not isinstance(sentence, str) or not sentence.strip():
        raise PolicyError(f"policy: {where}sentence must be a non-empty string")
    try:
        names = _placeholders(sentence)
    except PolicyError as e:
        raise PolicyError(f"policy: {where}sentence: {e}") from None
    for n in names:
        if n not in spec.details:
            raise PolicyError(
                f"policy: {where}sentence uses {{{n}}}, which {code} does not provide "
                f"(it provides: {', '.join(spec.details)})"
            )
    propagate = raw.get("propagate", False)
    if not isinstance(propagate, bool):
        raise PolicyError(f"policy: {where}propagate must be true or false, not {propagate!r}")
    if propagate and side != "fraud":
        raise PolicyError(f"policy: {where}propagate is only for side fraud")
    void_if = raw.get("void_if", []) or []
    if not isinstance(void_if, list) or any(not isinstance(c, str) for c in void_if):
        raise PolicyError(f"policy: {where}void_if must be a list of indicator codes, not {void_if!r}")
    if void_if and side != "cardholder":
        raise PolicyError(f"policy: {where}void_if is only for side cardholder")
    for c in void_if:
        if c not in SPECS:
            raise PolicyError(f"policy: {where}void_if names {c!r}, which is not a known indicator")
    return Indicator(code, side, group, weight, tuple(tiers), params, sentence.strip(), enabled, propagate,
                     tuple(void_if))


def parse_policy(raw: Any, source: str = "default") -> Policy:
    raw = _map(raw, "the top level")
    _unknown(raw, {"version", "prior_log_odds", "fraud_threshold", "ip_prefix_octets", "rotating_proxy_min_ips",
                   "indicators", "persons", "subjects"}, "")
    if raw.get("version") != 1:
        raise PolicyError(f"policy: version must be 1, not {raw.get('version')!r}")
    prior = _num(raw, "prior_log_odds", "", -20, 20)
    threshold = _num(raw, "fraud_threshold", "", -20, 20)
    octets = _int(raw, "ip_prefix_octets", "", 1, 4)
    inds_raw = _map(raw.get("indicators"), "indicators")
    indicators = {code: _indicator(code, v) for code, v in inds_raw.items()}
    groups: dict[str, str] = {}
    for ind in indicators.values():
        for c in ind.void_if:
            if c in indicators and indicators[c].side != "fraud":
                raise PolicyError(f"policy: indicators.{ind.code}.void_if names {c}, which is not a fraud indicator")
        if groups.setdefault(ind.group, ind.side) != ind.side:
            raise PolicyError(
                f"policy: indicators.{ind.code}.group {ind.group!r} mixes fraud and cardholder indicators"
            )
    persons = _map(raw.get("persons"), "persons")
    _unknown(persons, {"likely_victim", "grade_a"}, "persons.")
    lv = _map(persons.get("likely_victim"), "persons.likely_victim")
    _unknown(lv, {"fraud_share_above", "max_corroborated_clean_records"}, "persons.likely_victim.")
    ga = _map(persons.get("grade_a"), "persons.grade_a")
    _unknown(ga, {"min_cardholder_codes"}, "persons.grade_a.")
    subjects = _map(raw.get("subjects"), "subjects")
    _unknown(subjects, {"link_on", "min_records", "max_identifiers", "ip_hub_days"}, "subjects.")
    link_on = subjects.get("link_on")
    if not isinstance(link_on, list) or any(x not in LINKS for x in link_on):
        raise PolicyError(f"policy: subjects.link_on must be a list drawn from {', '.join(LINKS)}, not {link_on!r}")
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Policy(
        prior_log_odds=prior,
        fraud_threshold=threshold,
        ip_prefix_octets=octets,
        rotating_proxy_min_ips=_num(raw, "rotating_proxy_min_ips", "", 2),
        indicators=indicators,
        fraud_share_above=_num(lv, "fraud_share_above", "persons.likely_victim.", 0, 1),
        max_corroborated_clean_records=_int(lv, "max_corroborated_clean_records", "persons.likely_victim.", 0),
        min_cardholder_codes=_int(ga, "min_cardholder_codes", "persons.grade_a.", 1),
        link_on=tuple(dict.fromkeys(link_on)),
        min_records=_int(subjects, "min_records", "subjects.", 1),
        max_identifiers=_int(subjects, "max_identifiers", "subjects.", 1),
        ip_hub_days=_num(subjects, "ip_hub_days", "subjects.", 0),
        source=source,
        digest=digest,
        raw=raw,
    )
