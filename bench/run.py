"""ore's benchmarks: one command (``make bench``) for every figure the README quotes.

Each case runs ``ore`` in a child process and records wall time and the child's
peak resident memory (from ``wait4``), with the machine it ran on, into
bench/results.json and bench/results.md. Scenarios are made by ``ore synth``.

    python bench/run.py                 # every case
    python bench/run.py --only triage-7k  # that case again; the others keep their recorded figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "out"
ORE = [sys.executable, "-m", "ore.cli"]

# name -> (people in holdings, subscribers, what it shows)
TRIAGE_CASES = {
    "triage-7k": (20_000, 1_500, "Ore scale: the shared sample's size; goal <= 20 s"),
    "triage-100k": (500_000, 20_000, "a large national package"),
    "triage-400k": (2_000_000, 80_000, "400,000 records against 2-million-person holdings; goal <= 180 s, <= 8 GB"),
}


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{err[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_mib": round(usage.ru_maxrss / 1024, 1)}


def triage_case(name: str, people: int, subscribers: int) -> dict[str, object]:
    scen = WORK / f"scenario-{name}"
    if not (scen / "truth").exists():
        run(ORE + ["synth", str(scen), "--people", str(people), "--subscribers", str(subscribers), "--seed", "11",
                   "--force"])
    ws, out = WORK / f"ws-{name}", WORK / f"triage-{name}"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    figures = run(ORE + ["--workspace", str(ws), "triage", str(scen / "package"), "--reference",
                         str(scen / "reference"), "--out", str(out)])
    records = sum(1 for _ in (out / "records.csv").open()) - 1
    scores = json.loads(subprocess.run(ORE + ["evaluate", "--json", str(scen), str(out)], capture_output=True,
                                       text=True, check=True).stdout)
    stages = json.loads((out / "run.json").read_text())["seconds"]
    return {**figures, "records": records, "people": people, "stages": stages, "scores": scores}


def previous_cases() -> dict[str, object]:
    """Cases recorded by an earlier run, kept when ``--only`` re-runs some of them."""
    try:
        return dict(json.loads((HERE / "results.json").read_text())["cases"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def table_row(name: str, c: dict[str, Any]) -> str:
    """One case as a row of results.md (a case recorded before stage times or load were, left blank there)."""
    stages = c.get("stages", {})
    load = ", ".join(map(str, c.get("load_average", [])))
    return (f"| {name} | {c['records']:,} | {c['seconds']} | {c['peak_mib']} | {stages.get('ingest', '')} | "
            f"{stages.get('reference', '')} | {c.get('when', '')} | {load} | {c['what']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only these cases (repeatable); others keep their "
                                                        "recorded figures")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"),
                                  "cases": previous_cases() if args.only else {}}
    cases: dict[str, object] = results["cases"]  # type: ignore[assignment]
    for name, (people, subscribers, what) in TRIAGE_CASES.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}: {what} ...", flush=True)
        # the machine is shared: the load average says how much else ran beside the case
        load = os.getloadavg()[0]
        figures = triage_case(name, people, subscribers)
        cases[name] = {"what": what, "when": time.strftime("%Y-%m-%d %H:%M"),
                       "load_average": [round(load, 2), round(os.getloadavg()[0], 2)], **figures}
        print(f"  {cases[name]}", flush=True)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"Machine: {results['machine']}", "",
             "| case | records | seconds | peak MiB | ingest s | reference s | when | load before, after | what |",
             "|---|---:|---:|---:|---:|---:|---|---|---|"]
    for name, case in cases.items():
        lines.append(table_row(name, case))  # type: ignore[arg-type]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
