"""Helpers for the resolve tests: where the shared sample is, reading CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from shared_paths import SAMPLE  # noqa: E402
PACKAGE_ID = "SYN-PUBLIC-1"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
