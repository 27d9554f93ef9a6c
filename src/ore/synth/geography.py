"""Postcode districts, their towns and forces, and the prefix -> force routing table.

The routing table is written so that the spec's rule (longest matching prefix of the postcode
in canonical form, "TN3 1AB") gives every generated postcode the force the world assigns it;
``force_of`` applies that rule and the generator uses it for the truth, so truth and table
cannot disagree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from ore.synth.config import load_data

# Inward codes: a digit and two letters, never C I K M O V (Royal Mail's rule).
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
INWARD = np.array([f"{d}{a}{b}" for d in range(10) for a in _INWARD_LETTERS for b in _INWARD_LETTERS])


def _expand(area: str, spec: str) -> list[str]:
    """District codes of an area from "1-36,40-45" (numbers) or an explicit "EC1A,EC1M" list."""
    out: list[str] = []
    for part in str(spec).split(","):
        part = part.strip()
        if re.fullmatch(r"\d+-\d+", part):
            lo, hi = (int(x) for x in part.split("-"))
            out += [f"{area}{n}" for n in range(lo, hi + 1)]
        elif part.isdigit():
            out.append(f"{area}{part}")
        else:
            out.append(part)
    return out


@dataclass(frozen=True)
class Geography:
    """All districts (parallel arrays) and the routing table rows."""

    districts: np.ndarray  # district code, e.g. "TN31"
    towns: np.ndarray
    forces: np.ndarray  # force code of each district
    weights: np.ndarray  # sampling probability of each district
    area_of: np.ndarray  # index into `areas`
    areas: list[str]
    force_names: dict[str, str]
    table: list[tuple[str, str, str]]  # (prefix, force_code, force_name)

    @functools.cached_property
    def _prefixes(self) -> dict[str, str]:
        return {p: f for p, f, _ in self.table}

    def force_of(self, postcode: str) -> str:
        """Force of a postcode by the spec's rule: the longest table prefix of its canonical form."""
        canon = canonical(postcode)
        best = ""
        for i in range(len(canon), 0, -1):
            f = self._prefixes.get(canon[:i])
            if f is not None:
                best = f
                break
        return best

    def districts_of_area(self, area_idx: int) -> np.ndarray:
        return np.flatnonzero(self.area_of == area_idx)


def canonical(postcode: str) -> str:
    """Upper case, single space before the three-character inward code."""
    s = re.sub(r"\s+", "", postcode.upper())
    return f"{s[:-3]} {s[-3:]}" if len(s) > 3 else s


@functools.cache
def load_geography() -> Geography:
    data = load_data("geography")
    force_names: dict[str, str] = data["forces"]
    codes: list[str] = []
    towns: list[str] = []
    forces: list[str] = []
    weights: list[float] = []
    area_of: list[int] = []
    areas: list[str] = []
    table: list[tuple[str, str, str]] = []
    for ai, (area, row) in enumerate(data["areas"].items()):
        town, force, spec, weight = row[:4]
        splits = row[4] if len(row) > 4 else {}
        areas.append(area)
        ds = _expand(area, spec)
        assigned = {d: (force, town) for d in ds}
        for sforce, (sspec, stown) in splits.items():
            for d in _expand(area, sspec):
                if d in assigned:
                    assigned[d] = (sforce, stown)
        table.append((area, force, force_names[force]))
        if splits:
            table += [(d, f, force_names[f]) for d, (f, _) in assigned.items()]
        for d, (f, t) in assigned.items():
            codes.append(d)
            towns.append(t)
            forces.append(f)
            weights.append(float(weight) / len(ds))
            area_of.append(ai)
    w = np.asarray(weights)
    geo = Geography(
        districts=np.asarray(codes),
        towns=np.asarray(towns),
        forces=np.asarray(forces),
        weights=w / w.sum(),
        area_of=np.asarray(area_of),
        areas=areas,
        force_names=force_names,
        table=table,
    )
    for d, f in zip(geo.districts, geo.forces, strict=True):  # the table must route every district right
        if geo.force_of(f"{d} 1AA") != f:  # pragma: no cover - a data-file error
            raise ValueError(f"postcode table routes district {d} wrongly")
    return geo


def postcodes(districts: np.ndarray, inward: np.ndarray, geo: Geography) -> np.ndarray:
    """Canonical postcode strings for district indices and inward-code indices (vectorised)."""
    return np.char.add(np.char.add(geo.districts[districts], " "), INWARD[inward])
