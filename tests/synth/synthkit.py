"""Helpers for the synth tests."""

from __future__ import annotations

import csv
from pathlib import Path

SMALL = {"people": 4_000, "subscribers": 250}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
