"""The generator's assumptions, read from the YAML data files shipped in the package.

Keeping distributions and difficulty presets in data (``data/world.yaml``) rather than in
code lets a reviewer see, and a test vary, what a scenario assumes about the world.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

DIFFICULTIES = ("easy", "standard", "hard")
UNBOUNDED = {"hard_fraud", "merchant_bursts"}  # knobs that are weights or counts, not probabilities


@functools.cache
def load_data(name: str) -> dict[str, Any]:
    """One of the package's YAML data files, parsed once per process."""
    text = resources.files("ore.synth").joinpath("data").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):  # pragma: no cover - the files are ours
        raise TypeError(f"synth data file {name}.yaml is not a mapping")
    return data


def words(text: str) -> list[str]:
    """A whitespace-separated list from the YAML files (compact for long name lists)."""
    return text.split()


@dataclass(frozen=True)
class Settings:
    """The world description plus the resolved rates for one difficulty and its knobs."""

    world: dict[str, Any]
    rates: dict[str, float]
    difficulty: str

    def __getitem__(self, section: str) -> Any:
        return self.world[section]


def resolve(difficulty: str = "standard", **knobs: float) -> Settings:
    """Merge the default rates, the difficulty preset and explicit knobs (unknown knobs are an error)."""
    world = load_data("world")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}")
    rates: dict[str, float] = {k: float(v) for k, v in world["rates"].items()}
    rates.update({k: float(v) for k, v in (world["difficulty"].get(difficulty) or {}).items()})
    unknown = sorted(set(knobs) - set(rates))
    if unknown:
        raise ValueError(f"unknown synth knob(s): {', '.join(unknown)}; known: {', '.join(sorted(rates))}")
    for k, v in knobs.items():
        value = float(v)
        if value < 0 or (k not in UNBOUNDED and value > 1):
            raise ValueError(f"knob {k}={v} is out of range")
        rates[k] = value
    return Settings(world=world, rates=rates, difficulty=difficulty)
