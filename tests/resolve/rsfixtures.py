"""Helpers for the resolve tests: where the shared sample is, reading CSV."""

from __future__ import annotations

import csv
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "public-1"
if not SAMPLE.exists():  # CI lays shared/ beside the clone
    SAMPLE = Path("/work/shared/samples/public-1")
PACKAGE_ID = "SYN-PUBLIC-1"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
