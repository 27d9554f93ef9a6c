"""Quality of ore's triage on generated scenarios of several seeds and difficulties.

    python bench/quality.py [--seeds 1 2 3] [--difficulties standard hard]

Writes bench/quality.json and bench/quality.md (the table the README quotes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "out" / "quality"
ORE = [sys.executable, "-m", "ore.cli"]
SHOWN = ["resolution_pairwise_f1", "fraud_precision", "fraud_recall", "victims_treated_as_suspects",
         "adult_only_actioned", "high_risk_in_P1", "P1_precision", "subscribers_actioned", "register_recall",
         "register_precision", "force_accuracy", "deconfliction_recall", "actors_surfaced"]


def one(seed: int, difficulty: str) -> dict[str, float]:
    scen, out = WORK / f"{difficulty}-{seed}", WORK / f"{difficulty}-{seed}-out"
    for p in (scen, out):
        shutil.rmtree(p, ignore_errors=True)
    subprocess.run(ORE + ["synth", str(scen), "--seed", str(seed), "--difficulty", difficulty], check=True,
                   capture_output=True)
    subprocess.run(ORE + ["--workspace", str(out / "ws"), "triage", str(scen / "package"), "--reference",
                          str(scen / "reference"), "--out", str(out)], check=True, capture_output=True)
    return json.loads(subprocess.run(ORE + ["evaluate", "--json", str(scen), str(out)], check=True,
                                     capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--difficulties", nargs="+", default=["standard", "hard"])
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rows = {f"{d} seed {s}": one(s, d) for d in args.difficulties for s in args.seeds}
    (HERE / "quality.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| scenario | " + " | ".join(SHOWN) + " |", "|---|" + "---:|" * len(SHOWN)]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join("" if m.get(k) is None else f"{m[k]:.3f}" for k in SHOWN) + " |")
    (HERE / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
