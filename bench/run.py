"""ore's benchmarks: one command (``make bench``) for every figure the README quotes.

Each benchmark runs in a child process whose wall time and peak resident memory (from
``wait4``: the largest process of its tree) are recorded, with the machine and its load
average (the machine is shared), into bench/results.json and bench/results.md:

- ``triage-7k``, ``triage-100k``, ``triage-400k``: ``ore triage`` on scenarios made by ``ore synth``
  (400,000 records against the holdings of a 2,000,000-person population), and on the same
  input the naive exact-match method (``bench/naive.py``: every cardholder a suspect, exact name
  and postcode matching); both outputs scored by ``ore evaluate`` (the shared scorer's figures);
- ``quality``: ``bench/quality.py``, both methods on standard and hard scenarios at four seeds;
- ``watch``: ``bench/watch.py``, a 10-million-row payment feed against 100,000 watched cards;
- ``web-sqlite`` (and ``web-postgresql`` where ``ORE_BENCH_PG_URL`` names a scratch database, which
  is emptied): ``bench/web.py``, person-page latency with 50 signed-in clients on 400,000 persons.

    python bench/run.py                              # every benchmark
    python bench/run.py --only triage-7k --only quality  # those again; the others keep their figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "out"
ORE = [sys.executable, "-m", "ore.cli"]
NAIVE = [sys.executable, str(HERE / "naive.py")]

# name -> (people in the population the holdings describe, subscribers, what it shows)
TRIAGE_CASES = {
    "triage-7k": (20_000, 1_500, "the shared sample's size (Operation Ore's scale); goal <= 20 s"),
    "triage-100k": (500_000, 20_000, "a large national package"),
    "triage-400k": (2_000_000, 80_000, "400,000 records against 2-million-person holdings; "
                                       "goal <= 180 s and <= 8 GB on 2 cores"),
}
GOALS = {"triage-7k": (20, None), "triage-400k": (180, 8 * 1024)}  # seconds, MiB
OTHER_CASES = ("quality", "watch", "web-sqlite", "web-postgresql")
ORDER = [*TRIAGE_CASES, *OTHER_CASES]
# the metrics shown side by side (all of them are in results.json)
SHOWN = ["resolution_pairwise_f1", "fraud_precision", "fraud_recall", "victims_treated_as_suspects",
         "adult_only_actioned", "high_risk_in_P1", "P1_precision", "subscribers_actioned", "register_recall",
         "register_precision", "force_accuracy", "deconfliction_recall", "actors_surfaced"]
HOLDINGS = ("register", "convictions", "employment", "open_cases", "households", "card_alerts")


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


def describe(m: dict[str, Any]) -> str:
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['platform']}"


def run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall seconds, CPU seconds (user + system, its tree), peak RSS (MiB) and standard output of a child.

    On a shared machine the wall time grows with the load; the CPU time much less, so both are kept.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # files, not pipes: wait4 reaps
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{err.read().decode(errors='replace')[-2000:]}")
        return {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                "peak_mib": round(usage.ru_maxrss / 1024, 1), "stdout": out.read().decode(errors="replace")}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    figures = run(cmd, env)
    return {k: figures[k] for k in ("seconds", "cpu_seconds", "peak_mib")}


def score(scenario: Path, out: Path) -> dict[str, Any]:
    """The shared scorer's figures (``ore evaluate``), the same for ore and the naive method."""
    return json.loads(subprocess.run(ORE + ["evaluate", "--json", str(scenario), str(out)], capture_output=True,
                                     text=True, check=True).stdout)


def rows(path: Path) -> int:
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def triage_case(name: str, people: int, subscribers: int) -> dict[str, Any]:
    """ore and the naive method on one scenario, each timed and scored."""
    scen = WORK / f"scenario-{name}"
    if not (scen / "truth").exists():
        run(ORE + ["synth", str(scen), "--people", str(people), "--subscribers", str(subscribers), "--seed", "11",
                   "--force"])
    holdings = {h: rows(scen / "reference" / f"{h}.csv") for h in HOLDINGS if (scen / "reference" / f"{h}.csv").exists()}
    ws, out, naive_out = WORK / f"ws-{name}", WORK / f"triage-{name}", WORK / f"naive-{name}"
    for p in (ws, out, naive_out):
        shutil.rmtree(p, ignore_errors=True)
    pkg, ref = str(scen / "package"), str(scen / "reference")
    load = os.getloadavg()[0]
    ore = timed(ORE + ["--workspace", str(ws), "triage", pkg, "--reference", ref, "--out", str(out)])
    ore_load = [round(load, 2), round(os.getloadavg()[0], 2)]
    ore["stages"] = json.loads((out / "run.json").read_text())["seconds"]
    load = os.getloadavg()[0]
    naive = timed(NAIVE + [pkg, "--reference", ref, "--out", str(naive_out)])
    naive_load = [round(load, 2), round(os.getloadavg()[0], 2)]
    ore |= {"load_average": ore_load, "scores": score(scen, out)}
    naive |= {"load_average": naive_load, "scores": score(scen, naive_out)}
    return {"records": rows(out / "records.csv"), "people": people, "holdings_rows": holdings, "ore": ore,
            "naive": naive}


def quality_case() -> dict[str, Any]:
    figures = timed([sys.executable, str(HERE / "quality.py")])
    return {**figures, "means": json.loads((HERE / "quality.json").read_text())["means"]}


def watch_case() -> dict[str, Any]:
    figures = timed([sys.executable, str(HERE / "watch.py")])
    saved = json.loads((WORK / "watch" / "results.json").read_text())
    return {**figures, "feed_rows": saved["info"]["rows"], "watched": saved["info"]["watched"],
            "cases": {r["case"]: r for r in saved["results"]}}


def web_case(database_url: str | None) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "web.py"), "--think", "1.0"]
    if database_url:
        cmd += ["--database-url", database_url]
    figures = run(cmd)
    return {k: figures[k] for k in ("seconds", "cpu_seconds", "peak_mib")} | json.loads(
        figures["stdout"].strip().splitlines()[-1])


def watch_goal(case: str, r: dict[str, Any]) -> tuple[str, str, bool]:
    """Issue 7's goal for a watch case, what was measured, and whether it was met."""
    if case == "token":
        rate = r["rows"] / max(r["stages"]["token semi-join"], 1e-9)
        return ">= 20M rows/s (token semi-join)", f"{rate / 1e6:,.1f}M rows/s", rate >= 20e6
    per_cpu = r["rows"] / max(r["tokenise_cpu_seconds"], 1e-9)
    return (">= 1M rows/s per core incl. tokenisation", f"{per_cpu / 1e6:,.2f}M rows/CPU-s", per_cpu >= 1e6)


def previous_cases() -> dict[str, Any]:
    """Cases recorded by an earlier run, kept when ``--only`` re-runs some of them."""
    try:
        return dict(json.loads((HERE / "results.json").read_text())["cases"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _f(value: Any) -> str:
    return "" if value is None else f"{value:.3f}"


def _load(c: dict[str, Any]) -> str:
    return " -> ".join(str(x) for x in c.get("load_average", []))


def report(results: dict[str, Any]) -> str:
    """bench/results.md: speed and peak memory of every case, ore and the naive method side by side."""
    cases: dict[str, Any] = results["cases"]
    lines = ["# Benchmarks", "", "Written by `make bench` (`python bench/run.py`); every figure is also in "
             "`bench/results.json`.", "", f"Machine: {describe(results['machine'])}.", "",
             "The machine is shared with other engineers' builds and tests: each run records the one-minute load "
             "average before and after it (2 cores: a load of 2 means both were busy). Peak memory is the largest "
             "process of the run (`wait4`). CPU seconds are user + system time of the run's processes: under load "
             "the wall time stretches and the CPU time much less, so on a busy machine the CPU time says more about "
             "the code. A goal is judged on the wall time as measured.", ""]
    triage = {k: v for k, v in cases.items() if k in TRIAGE_CASES and "ore" in v}
    if triage:
        lines += ["## Triage: ore and the naive exact-match method on the same input", "",
                  "| case | records | population / holdings rows | method | seconds | CPU seconds | peak MiB | goal | "
                  "met | when | load |", "|---|---:|---|---|---:|---:|---:|---|---|---|---|"]
        for name, c in triage.items():
            held = ", ".join(f"{k} {v:,}" for k, v in c.get("holdings_rows", {}).items())
            goal = GOALS.get(name)
            for method in ("ore", "naive"):
                m = c[method]
                goal_s, met = "", ""
                if goal and method == "ore":
                    goal_s = f"<= {goal[0]} s" + (f", <= {goal[1] // 1024} GB" if goal[1] else "")
                    met = "yes" if m["seconds"] <= goal[0] and (not goal[1] or m["peak_mib"] <= goal[1]) else "no"
                lines.append(f"| {name} | {c['records']:,} | {c['people']:,} people; {held} | {method} | "
                             f"{m['seconds']} | {m.get('cpu_seconds', '')} | {m['peak_mib']:,.0f} | {goal_s} | {met} | "
                             f"{c.get('when', '')} | "
                             f"{_load(m)} |")
        lines += ["", "Quality of the same runs (`ore evaluate`, the shared scorer's figures):", "",
                  "| case | method | " + " | ".join(SHOWN) + " |", "|---|---|" + "---:|" * len(SHOWN)]
        for name, c in triage.items():
            for method in ("ore", "naive"):
                s = c[method]["scores"]
                lines.append(f"| {name} | {method} | " + " | ".join(_f(s.get(k)) for k in SHOWN) + " |")
        stages = list(next(iter(triage.values()))["ore"].get("stages", {}))
        lines += ["", "ore's stage times (s, from `run.json`):", "", "| case | " + " | ".join(stages) + " |",
                  "|---|" + "---:|" * len(stages)]
        for name, c in triage.items():
            lines.append(f"| {name} | " + " | ".join(str(c["ore"]["stages"].get(s, "")) for s in stages) + " |")
    if q := cases.get("quality"):
        lines += ["", "## Quality on generated scenarios", "",
                  f"`bench/quality.py` (detail per seed in `bench/quality.md`); mean over seeds; {q['seconds']} s, "
                  f"peak {q['peak_mib']:,.0f} MiB, {q.get('when', '')}.", "",
                  "| scenarios | method | " + " | ".join(SHOWN) + " |", "|---|---|" + "---:|" * len(SHOWN)]
        for label, by_method in q["means"].items():
            for method, m in by_method.items():
                lines.append(f"| {label} | {method} | " + " | ".join(_f(m.get(k)) for k in SHOWN) + " |")
    if w := cases.get("watch"):
        lines += ["", "## Re-offending watch", "",
                  f"`bench/watch.py` (detail in `bench/watch.md`): {w['feed_rows']:,} feed rows against "
                  f"{w['watched']:,} watched cards; {w.get('when', '')}.", "",
                  "| case | goal | measured | met | seconds (all stages) | peak MiB | load |",
                  "|---|---|---:|---|---:|---:|---|"]
        for case, r in w["cases"].items():
            aim, measured, reached = watch_goal(case, r)
            lines.append(f"| {case} | {aim} | {measured} | {'yes' if reached else 'no'} | {r['seconds']} | "
                         f"{r['peak_mib']:,.0f} | {_load(r)} |")
    web = {k: v for k, v in cases.items() if k.startswith("web-")}
    if web:
        lines += ["", "## API latency (person page)", "",
                  "`bench/web.py --think 1.0`: signed-in clients each reading a random person's page (a scoped "
                  "case query and an audit entry) with a mean pause of 1 s.", "",
                  "| case | persons | clients | requests | p50 ms | p95 ms | max ms | pages/s | peak MiB | when | "
                  "load |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for name, c in web.items():
            lines.append(f"| {name} | {c['persons']:,} | {c['clients']} | {c['requests']:,} | {c['p50_ms']} | "
                         f"{c['p95_ms']} | {c['max_ms']} | {c['per_s']} | {c['peak_mib']:,.0f} | "
                         f"{c.get('when', '')} | {_load(c)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[*TRIAGE_CASES, *OTHER_CASES],
                        help="run only these cases (repeatable); others keep their recorded figures")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"),
                               "cases": previous_cases() if args.only else {}}
    cases: dict[str, Any] = results["cases"]
    pg_url = os.environ.get("ORE_BENCH_PG_URL")
    jobs: dict[str, Any] = {name: (lambda p=p, s=s, n=name: triage_case(n, p, s))
                            for name, (p, s, _) in TRIAGE_CASES.items()}
    jobs |= {"quality": quality_case, "watch": watch_case, "web-sqlite": lambda: web_case(None)}
    if pg_url:
        jobs["web-postgresql"] = lambda: web_case(pg_url)
    for name, job in jobs.items():
        if args.only and name not in args.only:
            continue
        what = TRIAGE_CASES[name][2] if name in TRIAGE_CASES else name
        print(f"{name}: {what} ...", flush=True)
        load = os.getloadavg()[0]
        figures = job()
        cases[name] = {"what": what, "when": time.strftime("%Y-%m-%d %H:%M"),
                       "load_average": [round(load, 2), round(os.getloadavg()[0], 2)], **figures}
        print(f"  {json.dumps(cases[name])[:600]}", flush=True)
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")  # written as each case ends
    results["cases"] = {k: cases[k] for k in sorted(cases, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))}
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
