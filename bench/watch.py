"""The re-offending watch's benchmark: a 10-million-row payment feed against a 100,000-identifier watchlist.

    python bench/watch.py                      # both cases, 10M rows, 100k watched; writes bench/watch.md
    python bench/watch.py --rows 1000000       # smaller, for a quick look

Two cases, each in its own child process (so each peak memory is its own):
- ``token``: a pre-tokenised Parquet feed (64-hex ``card_token``, email, account name, merchant,
  product, amount, time) against 100,000 watched card tokens (and 100,000 emails and account
  names). Goal: the match (the semi-join on the token) at >= 20 million rows/s.
- ``raw``: the same feed with clear card numbers, every one distinct (the worst case: each is
  checked and tokenised), against 100,000 watched tokens made under the bench's key. Goal:
  >= 1 million rows/s per core including tokenisation, counted as rows per CPU-second of the
  process and its tokenising workers (so more cores do not flatter it).

Both run ``ore.watch``'s DuckDB engine stage by stage (the same functions ``ore watch screen``
calls: open, load, parse, tokenise, match, collect) on watchlists made here; the case store is
not involved (its writes are a few rows per alert). 1,000 feed rows carry a watched card and
100 a watched email, so the collect stage is as small as in life. Data is written once to
bench/out/watch and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run import machine  # noqa: E402 - one description of the machine for every benchmark

HERE = Path(__file__).resolve().parent
WORK = HERE / "out" / "watch"
KEY = bytes(range(7, 39))  # the bench's card key (32 bytes); no real card is ever involved
HITS_CARD, HITS_EMAIL = 1_000, 100


def _card_sql(i: str) -> str:
    """SQL: a Luhn-valid 16-digit number made from the integer expression ``i`` (distinct for distinct i)."""
    body = f"('4' || lpad(CAST({i} AS VARCHAR), 14, '0'))"
    terms = []
    for pos in range(15):  # body digits from the right: positions 0, 2, 4 ... are doubled (the check digit follows)
        d = f"CAST(substr({body}, {15 - pos}, 1) AS INTEGER)"
        terms.append(f"(CASE WHEN {d} * 2 > 9 THEN {d} * 2 - 9 ELSE {d} * 2 END)" if pos % 2 == 0 else d)
    return f"({body} || CAST((10 - ({' + '.join(terms)}) % 10) % 10 AS VARCHAR))"


def make_data(rows: int, watched: int) -> dict[str, Any]:
    """The two feeds (Parquet) and the watchlists (Parquet), written once per size."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ore.watch.cards import tokens

    d = WORK / f"{rows}-{watched}"
    done = d / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    d.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET temp_directory = '{WORK}/tmp'")
    step = max(rows // HITS_CARD, 1)
    con.execute(f"""
        CREATE TABLE f AS SELECT i,
            TIMESTAMP '2024-01-01' + to_seconds(i % 31536000) AS transaction_time,
            CASE WHEN i % 50 = 0 THEN 'KEYZ AV SERVICES' ELSE 'SHOP ' || (i % 997) END AS merchant,
            'PRODUCT-' || (i % 211) AS product, round(1 + (i % 5000) / 100.0, 2) AS amount,
            'user' || i || '@mail.example' AS email, 'user' || i AS username,
            '10.' || (i % 250) || '.' || (i // 250 % 250) || '.' || (i // 62500 % 250) AS ip_address,
            {_card_sql('i')} AS card_number
        FROM range({rows}) t(i)""")
    # the token feed: the tokens of the same numbers (made once, here, with ore's bulk tokeniser)
    cards = con.sql("SELECT card_number FROM f ORDER BY i").to_arrow_table().column(0)
    con.register("_tok", pa.table({"i": pa.array(range(rows), pa.int64()), "card_token": tokens(KEY, cards)}))
    con.execute("CREATE TABLE t AS SELECT * FROM _tok")
    con.execute(f"COPY (SELECT transaction_time, merchant, product, amount, email, username, ip_address, card_number "
                f"FROM f ORDER BY i) TO '{d}/raw.parquet' (FORMAT parquet)")
    con.execute(f"COPY (SELECT transaction_time, merchant, product, amount, email, username, ip_address, card_token "
                f"FROM f JOIN t USING (i) ORDER BY i) TO '{d}/token.parquet' (FORMAT parquet)")
    # watchlists: HITS_CARD feed cards and the rest not in the feed; HITS_EMAIL feed emails and the rest not
    hit_tokens = con.sql(f"SELECT card_token FROM t WHERE i % {step} = 0 LIMIT {HITS_CARD}").to_arrow_table().column(0)
    others = con.sql(f"SELECT {_card_sql(f'{rows} + i')} FROM range({watched - len(hit_tokens)}) r(i)")
    other_tokens = tokens(KEY, others.to_arrow_table().column(0))
    all_tokens = pa.concat_arrays([hit_tokens.combine_chunks(), other_tokens])
    n = len(all_tokens)
    pq.write_table(pa.table({"subject_id": pa.array(range(n), pa.int64()), "token": all_tokens,
                             "key_version": pa.array([1] * n, pa.int32()), "last4": pa.array([None] * n, pa.string())}),
                   d / "watch_cards.parquet")
    con.execute(f"""COPY (SELECT i AS subject_id, CASE WHEN i < {HITS_EMAIL} THEN 'user' || (i * {step}) ELSE
                          'watched' || i END || '@mail.example' AS value, value AS shown FROM range({watched}) r(i))
                    TO '{d}/watch_emails.parquet' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT i AS subject_id, 'watched' || i AS value, value AS shown FROM range({watched}) r(i))
                    TO '{d}/watch_usernames.parquet' (FORMAT parquet)""")
    info = {"rows": rows, "watched": watched, "dir": str(d),
            "bytes": {p.name: p.stat().st_size for p in d.glob("*.parquet")}}
    done.write_text(json.dumps(info))
    return info


def run_case(case: str, data_dir: str, workers: int | None) -> dict[str, Any]:
    """One case in this process: every stage timed, CPU time and peak memory read at the end."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ore.watch import feed as feeds
    from ore.watch.engine import DuckDBEngine, connect, register_watchlist
    from ore.watch.watchlist import Watchlist

    d = Path(data_dir)
    empty = pa.table({"flag_id": pa.array([], pa.int64()), "value": pa.array([], pa.string())})
    wl = Watchlist(pq.read_table(d / "watch_cards.parquet"), pq.read_table(d / "watch_emails.parquet"),
                   pq.read_table(d / "watch_usernames.parquet"),
                   pa.table({"flag_id": pa.array([1], pa.int64()), "value": pa.array(["KEYZ AV SERVICES"])}), empty,
                   {}, {})
    load_before = os.getloadavg()[0]
    cpu0 = _cpu()
    stages: dict[str, float] = {}
    t0 = t = time.perf_counter()
    feed = feeds.open_feed(d / f"{case}.parquet")
    stages["open (sha256)"] = time.perf_counter() - t
    engine = DuckDBEngine()
    con = connect(WORK / "tmp")
    t = time.perf_counter()
    n = feeds.load(con, feed)
    stages["load"] = time.perf_counter() - t
    t = time.perf_counter()
    feeds.parse(con, feed)
    stages["parse"] = time.perf_counter() - t
    t = time.perf_counter()
    feeds.keep_keys(con, feed)
    stages["keep match keys"] = time.perf_counter() - t
    cpu_tok0 = _cpu()
    t = time.perf_counter()
    valid = feeds.check_cards(con)
    if feed.card_input == "number":
        engine._tokenise(con, valid, {1: KEY}, [1], workers)
    stages["check cards + tokenise"] = time.perf_counter() - t
    cpu_tok = _cpu() - cpu_tok0
    register_watchlist(con, wl)
    t = time.perf_counter()
    if feed.card_input == "number":
        semi = con.execute("SELECT count(*) FROM card_tokens WHERE token_bin IN (SELECT token FROM watch_cards)")
    else:
        semi = con.execute("SELECT count(*) FROM feed_keys WHERE token IN (SELECT token FROM watch_cards)")
    card_hits = semi.fetchall()[0][0]
    stages["token semi-join"] = time.perf_counter() - t
    t = time.perf_counter()
    hits = engine._match(con, feed, 1)
    flagged = engine._flagged(con)
    stages["match (cards, emails, accounts, flags)"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = engine._rows(con, feed, sorted({h[0] for h in hits}), 1)
    stages["collect hit rows"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    con.close()
    cpu = _cpu() - cpu0
    self_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"case": case, "rows": n, "card_hits": card_hits, "hit_rows": len(rows), "flagged_rows": len(flagged),
            "stages": {k: round(v, 3) for k, v in stages.items()}, "seconds": round(total, 2),
            "cpu_seconds": round(cpu, 2), "tokenise_cpu_seconds": round(cpu_tok, 2),
            "peak_mib": round(self_mib, 1), "worker_peak_mib": round(child_mib, 1),
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def report(results: list[dict[str, Any]], info: dict[str, Any], path: Path) -> None:
    m = machine()
    lines = [
        "# Watch benchmark", "",
        "`python bench/watch.py` (written by it). A payment feed of "
        f"{info['rows']:,} rows against {info['watched']:,} watched card tokens (and as many emails and account "
        "names), on ore.watch's DuckDB engine, stage by stage. Each case ran in its own process.", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['platform']}.",
        "", "The machine is shared with other engineers' builds and tests: the load average (1 minute) at each "
        "case's start and end is shown. CPU seconds are the process's and its workers' (user + system); on a "
        "machine this loaded they run high, as the cores' other threads compete for them.", "",
        "| case | rows | goal | measured | met | seconds (all stages) | CPU seconds | rows per CPU-second (all "
        "stages) | peak MiB | load average |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        st = r["stages"]
        if r["case"] == "token":
            rate = r["rows"] / st["token semi-join"]
            goal, measured, met = ">= 20M rows/s (token semi-join)", f"{rate / 1e6:,.1f}M rows/s", rate >= 20e6
        else:
            per_cpu = r["rows"] / max(r["tokenise_cpu_seconds"], 1e-9)
            goal = ">= 1M rows/s per core incl. tokenisation (card checks + tokenise, per CPU-second)"
            measured, met = f"{per_cpu / 1e6:,.2f}M rows/CPU-s", per_cpu >= 1e6
        peak = f"{r['peak_mib']:,.0f}" + (f" (+ workers {r['worker_peak_mib']:,.0f})" if r["worker_peak_mib"] else "")
        lines.append(f"| {r['case']} | {r['rows']:,} | {goal} | {measured} | {'yes' if met else 'no'} | "
                     f"{r['seconds']:,.1f} | {r['cpu_seconds']:,.1f} | {r['rows'] / r['cpu_seconds'] / 1e6:,.2f}M | "
                     f"{peak} | {r['load_average'][0]} -> {r['load_average'][1]} |")
    lines += ["", "Stage times (s):", "", "| stage | " + " | ".join(r["case"] for r in results) + " |",
              "|---|" + "---:|" * len(results)]
    for stage in results[0]["stages"]:
        lines.append(f"| {stage} | " + " | ".join(f"{r['stages'].get(stage, 0):,.2f}" for r in results) + " |")
    lines += ["", "Rates over the whole screen (every stage, wall clock): " + "; ".join(
        f"{r['case']} {r['rows'] / r['seconds'] / 1e6:,.2f}M rows/s" for r in results) + ".",
        "Hits: " + "; ".join(f"{r['case']} {r['card_hits']:,} card, {r['hit_rows']:,} rows by watched persons, "
                            f"{r['flagged_rows']:,} at a flagged merchant" for r in results) + ".", "",
        "Reading the figures:", "",
        "- The match itself is far inside its goal: the token semi-join compares 32-byte values (a valid token "
        "is kept as its bytes, not its 64 hex characters).",
        "- What a whole screen costs is reading and preparing the match keys once (`keep match keys`: reading "
        "the columns, trimming, checking tokens, normalising emails and account names, in one pass), about one "
        "CPU-second per million rows; the feed itself is read through a view and never held whole, which keeps "
        "the peak memory to the keys.",
        "- Raw card numbers: every number of this feed is distinct (the worst case; a real feed repeats a "
        "subscriber's card and each distinct number is tokenised once). The goal's figure is the rows over the "
        "CPU-seconds (process and workers) of `check cards + tokenise`: reading the numbers out of DuckDB, "
        "ingest's checks on every row with numpy (a block of rows at a time, Luhn on transposed digit matrices), "
        "finding the distinct valid numbers by sorting them as 64-bit integers, and HMAC-SHA256 per distinct "
        "number. HMAC through hashlib (a keyed state copied per number) is the floor, about 2 million numbers "
        "per CPU-second on this machine measured alone, so most of the stage is the HMAC (before the checks and "
        "the distinct step were done on integers in numpy, the stage made 0.90M rows per CPU-second). Worker "
        "processes (default: one per core) shorten the wall time, not the CPU time; their peak memory is "
        "mostly pages shared with the parent (fork), so it is an upper bound.", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--watch", type=int, default=100_000)
    ap.add_argument("--cases", default="token,raw")
    ap.add_argument("--workers", type=int, default=None, help="tokenising processes [default: one per core]")
    ap.add_argument("--out", type=Path, default=HERE / "watch.md")
    ap.add_argument("--render", action="store_true", help="rewrite the report from the last run's results")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--make-data", action="store_true", help=argparse.SUPPRESS)  # internal: write the data
    args = ap.parse_args()
    if args.make_data:
        print(json.dumps(make_data(args.rows, args.watch)))
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.data, args.workers)))
        return
    saved = WORK / "results.json"
    if args.render:
        last = json.loads(saved.read_text())
        report(last["results"], last["info"], args.out)
        return
    t = time.perf_counter()
    # the data is made in a child process: a case process forked from a parent that had made it would
    # inherit its high-water mark of resident memory (Linux keeps ru_maxrss across fork and exec)
    made = subprocess.run([sys.executable, __file__, "--make-data", "--rows", str(args.rows), "--watch",
                           str(args.watch)], check=True, capture_output=True, text=True)
    info = json.loads(made.stdout.strip().splitlines()[-1])
    print(f"data ready in {time.perf_counter() - t:.1f} s: {info['dir']}", file=sys.stderr)
    results = []
    for case in args.cases.split(","):
        cmd = [sys.executable, __file__, "--case", case, "--data", info["dir"]]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    saved.write_text(json.dumps({"results": results, "info": info}))
    report(results, info, args.out)
    print(f"written {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
