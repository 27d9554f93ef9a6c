"""CPORT (Seto & Eke 2015) for convicted persons: the score an offender manager's items give, and
what the published figures say about it. Used to rank alerts, never to raise or drop one.

What it decides, on what evidence:
- The score is the sum of the seven items, each 1 or 0 as the offender manager recorded it.
- An item not known is not guessed. With one unknown the score is the range it must lie
  in (``3-4``: the known items sum to 3, the unknown one adds 0 or 1); with more unknown
  than ``max_missing`` (one) there is no score at all, and the alert says so.
- Rates are shown only where a source in ``cport.yaml`` publishes them: the range across
  scores (3% to 41% any sexual reoffending), the median score (2, the 64th percentile) and
  the rate of a score of 5 against the median (about five times). No rate is interpolated
  for a score the sources do not name.
- Rank: a higher score is ranked first; a range sits between its ends (``3-4`` after 4,
  before 3); persons without a score come after every scored one, and the listing says
  "not assessed" or "not scorable", so the order never hides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ore.errors import OreError


@dataclass(frozen=True)
class Item:
    code: str
    text: str


@dataclass(frozen=True)
class Tool:
    """The tool as published: items, the missing-item limit, the published figures and their sources."""

    items: tuple[Item, ...]
    max_missing: int
    sources: dict[str, dict[str, str]]
    published: dict[str, Any]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.items)


@lru_cache(maxsize=1)
def tool() -> Tool:
    """The CPORT definition shipped in ``cport.yaml`` (checked: seven items, sources named)."""
    data = yaml.safe_load(resources.files("ore.watch").joinpath("cport.yaml").read_text(encoding="utf-8"))
    items = tuple(Item(i["code"], i["text"]) for i in data["items"])
    if len(items) != 7 or len({i.code for i in items}) != 7:
        raise OreError("cport.yaml: CPORT has seven distinct items")
    published = data["published"]
    for figure in [published["rate_range"], published["median_score"], *published["relative_rates"],
                   *published["rates_by_score"].values()]:
        if figure["source"] not in data["sources"]:
            raise OreError(f"cport.yaml: figure {figure} names no listed source")
    return Tool(items, int(data["max_missing"]), data["sources"], published)


@dataclass(frozen=True)
class Score:
    """A CPORT result: ``low``..``high`` (equal when every item is known), or no score (``low`` None)."""

    low: int | None
    high: int | None
    missing: tuple[str, ...]

    @property
    def scored(self) -> bool:
        return self.low is not None

    def shown(self) -> str:
        if self.low is None:
            return f"not scorable ({len(self.missing)} items unknown)"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"

    def rank_key(self) -> tuple[int, int, int]:
        """Sorts descending into: higher scores first, a range between its ends, unscored last."""
        if self.low is None or self.high is None:
            return (0, 0, 0)
        return (1, self.low + self.high, self.high)


def item_value(value: Any, code: str) -> int | None:
    """An item as recorded: 1, 0 or None (unknown); yes/no/unknown and true/false are read too."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    text = str(value).strip().lower()
    if text in ("1", "yes", "y", "true"):
        return 1
    if text in ("0", "no", "n", "false"):
        return 0
    if text in ("", "unknown", "?", "none"):
        return None
    raise OreError(f"CPORT item {code}: {value!r} is not yes, no or unknown")


def score(items: dict[str, int | None]) -> Score:
    """The score of one assessment (a mapping of every item code to 1, 0 or None)."""
    t = tool()
    if unknown := set(items) - set(t.codes):
        raise OreError(f"CPORT has no item {', '.join(sorted(unknown))}; its items: {', '.join(t.codes)}")
    values = {c: item_value(items.get(c), c) for c in t.codes}
    missing = tuple(c for c in t.codes if values[c] is None)
    if len(missing) > t.max_missing:
        return Score(None, None, missing)
    known = sum(v for v in values.values() if v is not None)
    return Score(known, known + len(missing), missing)


def published_context(s: Score) -> list[str]:
    """What the published figures say about this score, each sentence with its source; nothing invented."""
    t = tool()
    p = t.published
    if not s.scored:
        return []
    assert s.low is not None and s.high is not None
    out = []
    rr = p["rate_range"]
    out.append(f"Across CPORT scores, estimated {p['outcome']} ranged from {rr['low']:.0%} to {rr['high']:.0%} "
               f"(doi:{t.sources[rr['source']]['doi']}).")
    if s.low == s.high:
        rate = p["rates_by_score"].get(s.low)
        if rate is not None:
            out.append(f"Score {s.low}: {rate['rate']:.0%} {p['outcome']} (doi:{t.sources[rate['source']]['doi']}).")
        med = p["median_score"]
        if s.low == med["score"]:
            out.append(f"Score {s.low} is the median score, the {med['percentile']}th percentile of risk "
                       f"(doi:{t.sources[med['source']]['doi']}).")
        for rel in p["relative_rates"]:
            if rel["score"] == s.low:
                about = "about " if rel.get("approximate") else ""
                out.append(f"Score {s.low} reoffended at {about}{rel['times']} times the rate of score "
                           f"{rel['against']} (doi:{t.sources[rel['source']]['doi']}).")
    return out
