"""SIGKILL at random points loses nothing: ingest, triage --commit, cases import, watch screen.

Each command runs in a real process (``crashkit``) on a fresh copy of a prepared workspace
and is killed with SIGKILL: up to half the kills at checkpoints of the run (just before or
after a commit or a rename: the first, the last, and one drawn from each stretch between),
the rest after random delays spread over the command's measured clean duration (a delay
that outlasts the run kills nothing, and another is drawn). After each kill:

- ``ore doctor``'s checks (``ore.ops.integrity``: SQLite integrity and foreign keys, DuckDB
  read in full with its ingest accounts balanced, the audit chain) find nothing broken;
- running the command again completes;
- the end state equals a clean run's (``crashkit.canonical``: every table, the audit
  entries, the files), and the doctor then finds nothing left over or unfinished.

20 kills per command here (``ORE_CRASH_KILLS=200`` for the long run). The kills are drawn
from ``ORE_CRASH_SEED`` (random unless given); a failure names the seed, the run and the
checkpoint or delay, and the same seed draws the same checkpoints and delays again.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from casekit import PASSWORD, make_user

import crashkit
from ore.config import get_settings
from ore.ops.doctor import run_checks
from ore.store import store_for
from ore.synth import generate
from ore.workspace import Workspace

KILLS = int(os.environ.get("ORE_CRASH_KILLS", "20"))
SEED = int(os.environ.get("ORE_CRASH_SEED", str(random.SystemRandom().randrange(1_000_000))))
USER = "crash.analyst"
INTEGRITY = ("case store integrity", "bulk tables", "unfinished run", "leftover files", "audit chain")


@dataclass(frozen=True)
class Command:
    name: str
    argv: Callable[[Path], list[str]]  # from the run directory
    base: str  # which prepared workspace it starts from
    signed_in: bool = True


COMMANDS = [
    Command("ingest", lambda r: ["-w", str(r / "ws"), "ingest", str(r / "package.zip")], "empty", signed_in=False),
    Command("triage --commit", lambda r: ["-w", str(r / "ws"), "triage", str(r / "package"), "--reference",
                                          str(r / "reference"), "--out", str(r / "out"), "--commit"], "empty"),
    Command("cases import", lambda r: ["-w", str(r / "ws"), "cases", "import", str(r / "out")], "triaged"),
    Command("watch screen", lambda r: ["-w", str(r / "ws"), "watch", "screen", str(r / "feed.csv")], "watched"),
]


def _new_workspace(root: Path) -> Workspace:
    ws = Workspace.open(root / "ws", get_settings())
    ws.card_key()  # the same key in every copy: tokens compare between runs
    store = store_for(ws)
    make_user(store, USER, "analyst")
    store.dispose()
    return ws


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Prepared run directories: a scenario's package, reference and (later) feed beside a workspace."""
    from ore.pipeline import triage

    top = tmp_path_factory.mktemp("crash-bases")
    scenario = top / "scenario"
    generate(scenario, people=1500, subscribers=120, seed=31)  # about 670 leads and 2,900 visits

    empty = top / "empty"
    shutil.copytree(scenario / "package", empty / "package")
    shutil.copytree(scenario / "reference", empty / "reference")
    with zipfile.ZipFile(empty / "package.zip", "w") as z:
        for f in sorted((empty / "package").iterdir()):
            z.write(f, f.name)
    _new_workspace(empty)

    triaged = top / "triaged"
    shutil.copytree(empty, triaged)
    ws = Workspace.open(triaged / "ws", get_settings())
    triage(ws, triaged / "package", triaged / "out", reference=triaged / "reference")

    watched = top / "watched"
    shutil.copytree(triaged, watched)
    ws = Workspace.open(watched / "ws", get_settings())
    store = store_for(ws)
    sys.path.insert(0, str(Path(__file__).parents[1] / "watch"))  # the watch tests' operation and feed
    import watchkit
    from casekit import Triaged, card_numbers

    op = watchkit.prepare(store, Triaged(scenario, ws, watched / "out"))
    watchkit.later_feed(watched / "feed.csv", op, known_cards=card_numbers(scenario))
    store.dispose()
    return {"empty": empty, "triaged": triaged, "watched": watched}


def _env(command: Command) -> dict[str, str]:
    env = {"ORE_LOCK_TIMEOUT": "60", "ORE_LOG_LEVEL": "WARNING"}
    if command.signed_in:
        env |= {"ORE_USER": USER, "ORE_PASSWORD": PASSWORD}
    return env


def _fresh(base: Path, run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    shutil.copytree(base, run_dir)


def _problems(run_dir: Path, *, after_rerun: bool) -> list[str]:
    """What the doctor's integrity checks find: any failure; after the re-run, any warning too."""
    report = run_checks(run_dir / "ws", min_free_gib=0, warn_free_gib=0)
    bad = {"fail", "warn"} if after_rerun else {"fail"}
    return [f"{c.name}: {c.status}: {c.detail}" for c in report.checks if c.name in INTEGRITY and c.status in bad]


def _checkpoint_kills(rng: random.Random, checkpoints: int) -> list[int]:
    """Half the kills at checkpoints: every one when there are few; else the first, the last (after the
    final commit is where a forgotten last step shows) and one drawn from each equal stretch between."""
    at_points = KILLS // 2
    if checkpoints <= at_points:
        return list(range(1, checkpoints + 1))
    inner = max(at_points - 2, 0)
    edges = [2 + round(i * (checkpoints - 2) / inner) for i in range(inner + 1)] if inner else []
    return sorted([1, checkpoints] + [rng.randrange(lo, max(hi, lo + 1)) for lo, hi in zip(edges, edges[1:])])


def _kill_plan(rng: random.Random, checkpoints: int, duration: list[float]) -> Iterator[tuple[str, float]]:
    """The checkpoint kills, then delays drawn over a run's duration (``duration[0]``, kept up to date by
    the caller), for as long as asked."""
    for n in _checkpoint_kills(rng, checkpoints):
        yield "checkpoint", float(n)
    while True:
        yield "delay", rng.uniform(0.0, duration[0])


@pytest.mark.slow  # minutes: run by make test (CI), skipped by make quick
@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_a_killed_command_loses_nothing_and_duplicates_nothing(command: Command, bases: dict[str, Path],
                                                               tmp_path: Path) -> None:
    run_dir = tmp_path / "run"  # every run in the same place: paths recorded in the stores compare
    log = tmp_path / "ore.log"
    env = _env(command)

    _fresh(bases[command.base], run_dir)
    clean = crashkit.run(command.argv(run_dir), env, log)
    assert clean.exitcode == 0, clean.log
    assert not _problems(run_dir, after_rerun=True)
    want = crashkit.canonical(run_dir, run_dir / "ws")

    seed = SEED + sum(map(ord, command.name))
    rng = random.Random(seed)
    duration = [clean.seconds]  # the delays' range: the shortest whole run seen (a loaded machine varies)
    plan = _kill_plan(rng, len(clean.checkpoints), duration)
    killed = runs = 0
    while killed < KILLS and runs < 3 * KILLS:  # a delay past the end of a run kills nothing: draw again
        how, value = next(plan)
        runs += 1
        _fresh(bases[command.base], run_dir)
        log.unlink(missing_ok=True)
        if how == "checkpoint":
            first = crashkit.run(command.argv(run_dir), env, log, kill_at=int(value))
            where = f"run {runs}, kill at checkpoint {int(value)} " \
                    f"({clean.checkpoints[int(value) - 1]}) of {len(clean.checkpoints)}"
        else:
            first = crashkit.run(command.argv(run_dir), env, log, kill_after=value)
            where = f"run {runs}, kill after {value:.3f} s of a {duration[0]:.2f} s run"
        context = f"ORE_CRASH_SEED={SEED} ({command.name}, {where})"
        assert first.killed or first.exitcode == 0, f"{context}: exit {first.exitcode}\n{first.log}"
        if not first.killed:  # it finished first: a clean run, nothing to recover from
            duration[0] = min(duration[0], first.seconds)
            continue
        killed += 1

        found = _problems(run_dir, after_rerun=False)
        assert not found, f"{context}: the store after the kill: {found}"

        again = crashkit.run(command.argv(run_dir), env, log)
        assert again.exitcode == 0, f"{context}: the re-run failed (exit {again.exitcode})\n{again.log}"
        found = _problems(run_dir, after_rerun=True)
        assert not found, f"{context}: after the re-run: {found}"
        diff = crashkit.differences(crashkit.canonical(run_dir, run_dir / "ws"), want)
        assert not diff, f"{context}: the end state differs from a clean run's:\n" + "\n".join(diff)
    assert killed == KILLS, f"ORE_CRASH_SEED={SEED}: only {killed} of {runs} runs were killed"
