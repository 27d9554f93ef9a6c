"""Quality of ore's triage, and of the naive exact-match method, on generated scenarios.

    python bench/quality.py [--seeds 1 2 3 4] [--difficulties standard hard]

Each scenario (``ore synth``, 20,000 people, about 7,700 records) is triaged by ore and by
``bench/naive.py`` (every cardholder a suspect, exact name and postcode matching), and both outputs
are scored by the same scorer (``ore evaluate``: the figures of ``shared/eval/score.py``). Writes
bench/quality.json (per scenario and the means per difficulty) and bench/quality.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from statistics import mean
from typing import Any

from run import NAIVE, ORE, SHOWN, score  # noqa: E402 - the bench's one scorer and one list of metrics

HERE = Path(__file__).resolve().parent
WORK = HERE / "out" / "quality"
METHODS = ("ore", "naive")


def one(seed: int, difficulty: str) -> dict[str, dict[str, Any]]:
    scen = WORK / f"{difficulty}-{seed}"
    outs = {m: WORK / f"{difficulty}-{seed}-{m}" for m in METHODS}
    for p in (scen, *outs.values()):
        shutil.rmtree(p, ignore_errors=True)
    subprocess.run(ORE + ["synth", str(scen), "--seed", str(seed), "--difficulty", difficulty], check=True,
                   capture_output=True)
    args = [str(scen / "package"), "--reference", str(scen / "reference"), "--out"]
    subprocess.run(ORE + ["--workspace", str(outs["ore"] / "ws"), "triage", *args, str(outs["ore"])], check=True,
                   capture_output=True)
    subprocess.run(NAIVE + [*args, str(outs["naive"])], check=True, capture_output=True)
    return {m: score(scen, out) for m, out in outs.items()}


def means(rows: dict[str, dict[str, dict[str, Any]]], difficulties: list[str]) -> dict[str, dict[str, Any]]:
    """Per difficulty and method, the mean of each metric over the seeds (a metric a scenario lacks is skipped)."""
    out: dict[str, dict[str, Any]] = {}
    for d in difficulties:
        runs = [r for name, r in rows.items() if name.startswith(f"{d} ")]
        label = f"{d}, {len(runs)} seeds"
        out[label] = {}
        for m in METHODS:
            keys = runs[0][m].keys()
            out[label][m] = {k: round(mean(v), 4) if (v := [r[m][k] for r in runs if r[m][k] is not None]) else None
                             for k in keys}
    return out


def _f(value: Any) -> str:
    return "" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--difficulties", nargs="+", default=["standard", "hard"])
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rows = {f"{d} seed {s}": one(s, d) for d in args.difficulties for s in args.seeds}
    summary = means(rows, args.difficulties)
    (HERE / "quality.json").write_text(json.dumps({"scenarios": rows, "means": summary}, indent=2) + "\n")
    header = ["| {} | method | " + " | ".join(SHOWN) + " |", "|---|---|" + "---:|" * len(SHOWN)]
    lines = ["# Quality: ore and the naive exact-match method", "",
             "`python bench/quality.py` (written by it): generated scenarios (`ore synth`, 20,000 people, about "
             "7,700 records each), triaged by ore and by `bench/naive.py`, both scored by `ore evaluate`.", "",
             "Mean over the seeds:", "", header[0].format("scenarios"), header[1]]
    for label, by_method in summary.items():
        lines += [f"| {label} | {m} | " + " | ".join(_f(v.get(k)) for k in SHOWN) + " |" for m, v in by_method.items()]
    lines += ["", "Each scenario:", "", header[0].format("scenario"), header[1]]
    for name, by_method in rows.items():
        lines += [f"| {name} | {m} | " + " | ".join(_f(v.get(k)) for k in SHOWN) + " |" for m, v in by_method.items()]
    (HERE / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
