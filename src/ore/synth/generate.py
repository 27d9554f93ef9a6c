"""Build one scenario: population, holdings, genuine buyers, fraud, malformed rows, truth."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ore.synth.buyers import Context, buyer_rows, pid, ts
from ore.synth.cast import Cast, cast_people
from ore.synth.config import Settings, load_data, resolve
from ore.synth.fraud import commit_fraud
from ore.synth.geography import Geography, canonical, load_geography
from ore.synth.holdings import Holdings, build_holdings, days, iso_dates
from ore.synth.malformed import CATEGORIES, malformed_rows
from ore.synth.orders import DAY, LEAD_COLUMNS, IPs, Row, Spans
from ore.synth.population import Population, build_population, choice_from
from ore.synth.writer import sha256, write_columns, write_manifest, write_rows

Progress = Callable[[str, int, int | None], None]
REFERENCE_FILES = (
    "register.csv",
    "convictions.csv",
    "employment.csv",
    "households.csv",
    "card_alerts.csv",
    "open_cases.csv",
    "postcode_forces.csv",
)


def _no_progress(label: str, done: int, total: int | None) -> None:
    return None


@dataclass
class SynthSummary:
    """What was generated and where; row counts are data rows (header excluded)."""

    outdir: Path
    package_id: str
    difficulty: str
    seed: int
    people: int
    households: int
    subscribers: int
    adult_only: int
    victims: int
    actors: int
    records: int  # rows of leads.csv
    genuine: int
    stolen: int
    malformed: int
    visits: int
    rows: dict[str, int] = field(default_factory=dict)  # "package/leads.csv" -> rows
    seconds: float = 0.0

    @property
    def package_dir(self) -> Path:
        return self.outdir / "package"

    @property
    def reference_dir(self) -> Path:
        return self.outdir / "reference"

    @property
    def truth_dir(self) -> Path:
        return self.outdir / "truth"


def generate(
    outdir: Path,
    *,
    people: int = 20_000,
    subscribers: int = 1_500,
    seed: int = 1,
    difficulty: str = "standard",
    progress: Progress | None = None,
    **knobs: float,
) -> SynthSummary:
    """Write a complete scenario (package, holdings, truth) into ``outdir``; same seed, same bytes."""
    started = time.perf_counter()
    report = progress or _no_progress
    settings = check_arguments(people, subscribers, difficulty, **knobs)
    outdir = Path(outdir)
    seeds = np.random.SeedSequence(seed).spawn(8)
    nrng = [np.random.default_rng(s) for s in seeds]
    prng = [random.Random(int(s.generate_state(1)[0])) for s in seeds]
    geo = load_geography()

    report("population", 0, people)
    pop = build_population(nrng[0], people, geo, settings)
    report("population", people // 2, people)
    cast = cast_people(nrng[1], pop, settings, subscribers)
    hold = build_holdings(nrng[2], pop, geo, cast, settings)
    report("population", people, people)

    timeline = settings["timeline"]
    pkg = settings["package"]
    ips = IPs(load_data("geography")["ip_blocks"])
    proxies = [ips.new(prng[6], "AOL") for _ in range(40)]
    ctx = Context(
        pop=pop,
        geo=geo,
        settings=settings,
        ips=ips,
        spans=Spans(),
        start=ts(timeline["start"]),
        end=ts(timeline["end"]),
        abbrev=settings["population"]["street_abbrev"],
        merchant=pkg["merchant"],
        merchant_variants=list(pkg["merchant_variants"]),
        shared_proxies=proxies,
        proxy_country={ip: ("GB" if ip.startswith("195.93.") else "US") for ip in proxies},
        district_cum=np.cumsum(geo.weights).tolist(),
        alerts=[],
        home_ips={},
        owners={},
    )
    rows: list[Row] = []
    buyers = [(int(p), False) for p in cast.subscribers] + [(int(p), True) for p in cast.adult_only]
    prng[3].shuffle(buyers)
    for i, (p, adult) in enumerate(buyers):
        rows += buyer_rows(ctx, prng[3], p, adult_only=adult)
        if i % 2000 == 0:
            report("buyers", i, len(buyers))
    report("buyers", len(buyers), len(buyers))
    n_abuse = sum(1 for r in rows if r.category == "abuse")
    share = settings.rates["stolen_share"]
    target = max(1, round(n_abuse * share / (1 - share)))
    fraud = commit_fraud(
        ctx,
        prng[4],
        nrng[4],
        np.flatnonzero(~cast.buyer),
        cast.subscribers,
        np.flatnonzero(cast.on_register & ~cast.buyer),
        target,
    )
    rows += fraud.rows

    mal_cfg = settings["malformed"]
    per_cat = max(int(mal_cfg["min_per_category"]), round(len(rows) * float(mal_cfg["per_category_share"])))
    bad = malformed_rows(prng[5], rows, per_cat)
    rows = _order_and_number(prng[5], rows, bad)
    report("writing files", 0, len(rows))

    # --- files
    package, reference, truth = outdir / "package", outdir / "reference", outdir / "truth"
    for d in (package, reference, truth):
        d.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    counts["package/leads.csv"] = write_rows(
        package / "leads.csv", LEAD_COLUMNS, ([r.values[c] for c in LEAD_COLUMNS] for r in rows)
    )
    visits = ctx.spans.visits(nrng[6], ctx.end + 20 * DAY)
    counts["package/visits.csv"] = write_columns(package / "visits.csv", visits)
    for name, cols in hold.tables.items():
        counts[f"reference/{name}"] = write_columns(reference / name, cols)
    counts["reference/card_alerts.csv"] = write_columns(
        reference / "card_alerts.csv", _card_alerts(nrng[7], pop, cast, ctx.alerts + fraud.alerts, settings)
    )
    counts["reference/postcode_forces.csv"] = write_rows(
        reference / "postcode_forces.csv", ["prefix", "force_code", "force_name"], geo.table
    )
    package_id = f"SYN-{difficulty.upper()}-{seed}-{sha256(package / 'leads.csv')[:8].upper()}"
    write_manifest(
        package,
        {
            "package_id": package_id,
            "operation": pkg["operation"],
            "source": pkg["source"],
            "received": str(pkg["received"]),
            "jurisdiction": pkg["jurisdiction"],
        },
        {"leads.csv": counts["package/leads.csv"], "visits.csv": counts["package/visits.csv"]},
    )

    # --- truth
    counts["truth/records.csv"] = write_rows(
        truth / "records.csv",
        ["record_id", "label", "person", "actor", "category"],
        ([r.values["record_id"], r.label, r.person, r.actor, r.category] for r in rows),
    )
    persons = _truth_persons(rows, pop, geo, hold)
    counts["truth/persons.csv"] = write_rows(
        truth / "persons.csv",
        [
            "person",
            "role",
            "high_risk",
            "register_id",
            "contact_offence",
            "works_with_children",
            "children_in_household",
            "force_code",
            "open_case",
        ],
        persons,
    )
    counts["truth/actors.csv"] = write_rows(
        truth / "actors.csv",
        ["actor", "style", "country", "emails"],
        ([a.actor, a.style, a.country, ";".join(a.emails)] for a in fraud.actors),
    )
    about = {
        "generator": "ore synth",
        "seed": seed,
        "people": people,
        "subscribers": subscribers,
        "difficulty": difficulty,
        "knobs": dict(sorted(knobs.items())),
        "rates": settings.rates,
        "package_id": package_id,
        "rows": counts,
    }
    (outdir / "scenario.json").write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
    report("writing files", len(rows), len(rows))
    labels = [r.label for r in rows]
    roles = [p[1] for p in persons]
    return SynthSummary(
        outdir=outdir,
        package_id=package_id,
        difficulty=difficulty,
        seed=seed,
        people=people,
        households=len(pop.hh_district),
        subscribers=roles.count("subscriber"),
        adult_only=roles.count("adult_only"),
        victims=roles.count("victim"),
        actors=len(fraud.actors),
        records=len(rows),
        genuine=labels.count("genuine"),
        stolen=labels.count("stolen"),
        malformed=labels.count("malformed"),
        visits=counts["package/visits.csv"],
        rows=counts,
        seconds=round(time.perf_counter() - started, 2),
    )


def check_arguments(people: int, subscribers: int, difficulty: str = "standard", **knobs: float) -> Settings:
    """The resolved settings, or ValueError naming what is wrong (before anything is written)."""
    settings = resolve(difficulty, **knobs)
    n_adult = round(subscribers * float(settings["subscribers"]["adult_only_per_subscriber"]))
    if subscribers < 1:
        raise ValueError("subscribers must be at least 1")
    if settings.rates["stolen_share"] > 0.9:
        raise ValueError("stolen_share above 0.9 leaves too few genuine records to steal around")
    need = 2 * (subscribers + n_adult) + int(subscribers * 0.5) + 200
    if people < need:
        raise ValueError(
            f"{people:,} people is too few for {subscribers:,} subscribers: give at least {need:,}"
        )
    return settings


def _order_and_number(rng: random.Random, valid: list[Row], bad: list[Row]) -> list[Row]:
    """File order is time order; record ids follow it; missing and duplicated ids are made last."""
    rows = sorted(valid + bad, key=lambda r: r.t)
    tids = rng.sample(range(10**9, 10**10), len(rows))
    for i, r in enumerate(rows):
        r.values["record_id"] = f"R{i + 1:07d}"
        r.values["transaction_id"] = f"T{tids[i]}"
    for i, r in enumerate(rows):
        if r.category == "no_record_id":
            r.values["record_id"] = ""
        elif r.category == "duplicate_record_id":
            earlier = [k for k in range(max(0, i - 400), i) if rows[k].label != "malformed"]
            k = (
                rng.choice(earlier)
                if earlier
                else next(k for k in range(len(rows)) if rows[k].label != "malformed")
            )
            if k > i:  # the original must come first in the file: move the duplicate after it
                raise AssertionError("duplicate before original")  # pragma: no cover
            r.values["record_id"] = rows[k].values["record_id"]
    return rows


def _card_alerts(
    rng: np.random.Generator,
    pop: Population,
    cast: Cast,
    fraud_alerts: list[tuple[str, str, str]],
    settings: Settings,
) -> dict[str, np.ndarray]:
    """Issuers' reports: the fraud's, some subscribers' own (lost, disputed), and ordinary people's."""
    hold = settings["holdings"]
    timeline = settings["timeline"]
    lo, hi = days(timeline["start"]) - 180, days(timeline["end"])
    noise = np.flatnonzero(rng.random(pop.size) < float(hold["card_alert_rate"]) * (~cast.buyer))
    own = cast.subscribers[
        rng.random(len(cast.subscribers)) < float(settings["subscribers"]["own_card_alert"])
    ]
    cards = np.concatenate(
        [pop.card1[noise], pop.card1[own], np.asarray([a[0] for a in fraud_alerts], dtype="U16")]
    )
    when = np.concatenate(
        [
            iso_dates(rng.integers(lo, hi, len(noise) + len(own))),
            np.asarray([a[1] for a in fraud_alerts], dtype="U10"),
        ]
    )
    kinds = np.concatenate(
        [
            choice_from(rng, {"lost": 0.4, "stolen": 0.3, "compromised": 0.2, "disputed": 0.1}, len(noise)),
            choice_from(rng, {"lost": 0.6, "disputed": 0.4}, len(own)),
            np.asarray([a[2] for a in fraud_alerts], dtype="U12"),
        ]
    )
    order = rng.permutation(len(cards))
    return {"card_number": cards[order], "reported_on": when[order], "alert_type": kinds[order]}


def _truth_persons(rows: list[Row], pop: Population, geo: Geography, hold: Holdings) -> list[list[str]]:
    """One row per person the records name; flags read from the holdings as written."""
    named: dict[str, set[str]] = {}
    for r in rows:
        if r.person:
            named.setdefault(r.person, set()).add(f"{r.label}:{r.category}")
    out = []
    for person in sorted(named):
        kinds = named[person]
        p = int(person[1:])
        role = (
            "subscriber"
            if "genuine:abuse" in kinds
            else "adult_only"
            if "genuine:adult" in kinds
            else "victim"
        )
        reg = hold.register_id.get(p, "")
        contact = bool(hold.contact[p])
        wwc = bool(hold.child_job[p])
        kids = int(pop.hh_children[pop.hh[p]])
        high = role == "subscriber" and bool(reg or contact or wwc or kids > 0)
        _, _, _, _, pc = pop.address(p, geo)
        out.append(
            [
                person,
                role,
                _b(high),
                reg,
                _b(contact),
                _b(wwc),
                str(kids),
                geo.force_of(canonical(pc)),
                hold.open_case.get(p, ""),
            ]
        )
    return out


def _b(v: bool) -> str:
    return "true" if v else "false"


__all__ = ["CATEGORIES", "REFERENCE_FILES", "SynthSummary", "generate", "pid"]
