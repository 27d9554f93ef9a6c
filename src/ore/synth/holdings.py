"""The receiving agency's holdings, built column-wise for the whole population.

Holdings record identity as it was known: formal names and, for people who moved, the old
address. The truth's flags are read back from the rows written here, so they cannot drift
from the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from ore.synth.cast import Cast
from ore.synth.config import Settings
from ore.synth.geography import INWARD, Geography
from ore.synth.population import EPOCH, Population, choice_from


def days(iso: str) -> int:
    return (date.fromisoformat(iso) - EPOCH).days


def iso_dates(d: np.ndarray) -> np.ndarray:
    return (np.datetime64("1970-01-01") + np.asarray(d, dtype=np.int64).astype("timedelta64[D]")).astype(str)


def join(*parts: np.ndarray | str) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(out, p)
    return np.asarray(out)


@dataclass
class Holdings:
    tables: dict[str, dict[str, np.ndarray]]  # file name -> columns
    register_id: dict[int, str] = field(default_factory=dict)  # person -> register id
    open_case: dict[int, str] = field(default_factory=dict)
    contact: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per person: contact conviction
    child_job: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per person: child-facing job


def recorded_identity(
    pop: Population,
    geo: Geography,
    idx: np.ndarray,
    rng: np.random.Generator | None = None,
    dob_error: float = 0.0,
) -> dict[str, np.ndarray]:
    """Formal names, date of birth (now and then mistyped), recorded (maybe old) address of people idx."""
    dob = pop.dob[idx]
    if rng is not None and dob_error > 0:
        wrong = rng.random(len(idx)) < dob_error
        shift = np.asarray([-365, 365, -1, 1, -10, 10, 30, -30])[rng.integers(0, 8, len(idx))]
        dob = np.where(wrong, dob + shift, dob)
    moved = pop.moved[idx]
    h = pop.hh[idx]
    dist = np.where(moved, pop.old_district[idx], pop.hh_district[h])
    inward = np.where(moved, pop.old_inward[idx], pop.hh_inward[h])
    number = np.where(moved, pop.old_number[idx], pop.hh_number[h])
    flat = np.where(moved, pop.old_flat[idx], pop.hh_flat[h])
    street = np.where(moved, pop.old_street[idx], pop.hh_street[h])
    stype = np.where(moved, pop.old_type[idx], pop.hh_type[h])
    return {
        "first_name": pop.names.first[pop.first[idx]],
        "last_name": pop.names.surnames[pop.last[idx]],
        "date_of_birth": iso_dates(dob),
        "address_line1": join(
            house(number, flat), " ", pop.names.streets[street], " ", pop.names.street_types[stype]
        ),
        "town": geo.towns[dist],
        "postcode": join(geo.districts[dist], " ", INWARD[inward]),
        "_force": geo.forces[dist],
    }


def house(number: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """House numbers as written: 12, or "Flat 3, 12" where the address is a flat."""
    plain = number.astype(str)
    has = flat > 0
    if not has.any():
        return plain
    out = plain.astype(object)
    out[has] = join("Flat ", flat[has].astype(str), ", ", plain[has]).astype(object)
    return out.astype(str)


def _uniform_days(rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int) -> np.ndarray:
    lo_a = np.asarray(lo, dtype=np.int64)
    hi_a = np.maximum(np.asarray(hi, dtype=np.int64), lo_a + 1)
    return lo_a + (rng.random(n) * (hi_a - lo_a)).astype(np.int64)


def build_holdings(
    rng: np.random.Generator, pop: Population, geo: Geography, cast: Cast, settings: Settings
) -> Holdings:
    hold = settings["holdings"]
    as_of = days(settings["timeline"]["holdings_as_of"])
    dob_error = settings.rates["holdings_dob_error"]
    tables: dict[str, dict[str, np.ndarray]] = {}
    out = Holdings(tables)

    # --- register
    reg = rng.permutation(np.flatnonzero(cast.on_register))
    ident = recorded_identity(pop, geo, reg, rng, dob_error)
    n = len(reg)
    offence = choice_from(rng, hold["offence_type"], n)
    registered = _uniform_days(rng, np.maximum(days("1997-09-01"), pop.dob[reg] + 18 * 365), as_of - 30, n)
    ids = np.asarray([f"REG{i:06d}" for i in range(1, n + 1)])
    tables["register.csv"] = {
        "register_id": ids,
        **{
            k: ident[k]
            for k in ("first_name", "last_name", "date_of_birth", "address_line1", "town", "postcode")
        },
        "registered_on": iso_dates(registered),
        "offence_type": offence,
        "risk_level": choice_from(rng, hold["risk_level"], n),
    }
    out.register_id = dict(zip(reg.tolist(), ids.tolist(), strict=True))

    # --- convictions: the register's offences, flagged contact offenders, base-rate others
    reg_cat = np.where(
        offence == "contact",
        np.where(rng.random(n) < 0.75, "sexual_contact_child", "sexual_contact_adult"),
        np.where(offence == "online", "iioc", "other"),
    )
    reg_date = registered - rng.integers(60, 3 * 365, n)
    contact_only = np.flatnonzero(cast.contact_conviction & ~cast.on_register)
    others = np.flatnonzero(cast.other_conviction)
    o_cat = choice_from(rng, hold["conviction_category"], len(others))
    people = np.concatenate([reg, contact_only, others])
    cats = np.concatenate([reg_cat, np.full(len(contact_only), "sexual_contact_child"), o_cat])
    adult_from = pop.dob[people] + 16 * 365
    when = np.concatenate(
        [
            reg_date,
            _uniform_days(rng, adult_from[n : n + len(contact_only)], days("1997-01-01"), len(contact_only)),
            _uniform_days(rng, adult_from[n + len(contact_only) :], as_of - 60, len(others)),
        ]
    )
    when = np.maximum(when, adult_from)
    order = rng.permutation(len(people))
    people, cats, when = people[order], cats[order], when[order]
    ident = recorded_identity(pop, geo, people, rng, dob_error)
    tables["convictions.csv"] = {
        "conviction_ref": np.asarray([f"CRO{i:07d}" for i in range(1, len(people) + 1)]),
        **{k: ident[k] for k in ("first_name", "last_name", "date_of_birth", "postcode")},
        "offence_date": iso_dates(when),
        "offence_category": cats,
        "disposal": choice_from(rng, hold["disposal"], len(people)),
    }
    contact = np.zeros(pop.size, bool)
    contact[people[cats == "sexual_contact_child"]] = True
    out.contact = contact

    # --- employment: child-facing jobs for flagged people, the sector mix for the rest
    occ = hold["occupations"]
    sectors = list(occ)
    roles = [(s, o, bool(w)) for s in sectors for o, w in occ[s][1]]
    child_roles = np.asarray([i for i, r in enumerate(roles) if r[2]])
    sector_p = np.asarray([float(occ[s][0]) for s in sectors])
    jobs = np.flatnonzero(cast.other_job)
    sec = rng.choice(len(sectors), len(jobs), p=sector_p / sector_p.sum())
    role_of_sector = [np.asarray([i for i, r in enumerate(roles) if r[0] == s]) for s in sectors]
    pick = np.empty(len(jobs), dtype=np.int64)
    for si, cand in enumerate(role_of_sector):
        m = sec == si
        pick[m] = cand[rng.integers(0, len(cand), int(m.sum()))]
    kids = np.flatnonzero(cast.child_job)
    people = np.concatenate([jobs, kids])
    role_idx = np.concatenate([pick, child_roles[rng.integers(0, len(child_roles), len(kids))]])
    order = rng.permutation(len(people))
    people, role_idx = people[order], role_idx[order]
    r_sector = np.asarray([r[0] for r in roles])[role_idx]
    r_occ = np.asarray([r[1] for r in roles])[role_idx]
    r_wwc = np.asarray([r[2] for r in roles])[role_idx]
    ident = recorded_identity(pop, geo, people, rng, dob_error)
    suffixes = hold["employer_suffix"]
    suffix = np.empty(len(people), dtype=object)
    for s in sectors:
        m = r_sector == s
        suffix[m] = np.asarray(suffixes[s])[rng.integers(0, len(suffixes[s]), int(m.sum()))]
    tables["employment.csv"] = {
        "employment_ref": np.asarray([f"EMP{i:07d}" for i in range(1, len(people) + 1)]),
        **{k: ident[k] for k in ("first_name", "last_name", "date_of_birth", "postcode")},
        "employer": join(ident["town"], " ", suffix.astype(str)),
        "occupation": r_occ,
        "sector": r_sector,
        "works_with_children": np.where(r_wwc, "true", "false"),
    }
    child_job = np.zeros(pop.size, bool)
    child_job[people[r_wwc]] = True
    out.child_job = child_job

    # --- households: every current address
    tables["households.csv"] = {
        "address_line1": join(
            house(pop.hh_number, pop.hh_flat),
            " ",
            pop.names.streets[pop.hh_street],
            " ",
            pop.names.street_types[pop.hh_type],
        ),
        "postcode": join(geo.districts[pop.hh_district], " ", INWARD[pop.hh_inward]),
        "children_under_18": pop.hh_children.astype(str),
    }

    # --- open cases, opened by the force of the address it was opened at
    oc = rng.permutation(np.flatnonzero(cast.open_case))
    ident = recorded_identity(pop, geo, oc, rng, dob_error)
    nums = rng.integers(1000, 10000, len(oc))
    yy = rng.integers(0, 100, len(oc))
    refs = np.asarray(
        [
            f"{f}/{a}/{b:02d}"
            for f, a, b in zip(ident["_force"].tolist(), nums.tolist(), yy.tolist(), strict=True)
        ]
    )
    refs = _unique_refs(refs)
    subjects = np.asarray(hold["open_case_subjects"])[
        rng.integers(0, len(hold["open_case_subjects"]), len(oc))
    ]
    tables["open_cases.csv"] = {
        "case_ref": refs,
        "force_code": ident["_force"],
        **{k: ident[k] for k in ("first_name", "last_name", "date_of_birth", "postcode")},
        "opened_on": iso_dates(_uniform_days(rng, days("2001-03-01"), as_of, len(oc))),
        "subject": subjects,
    }
    out.open_case = dict(zip(oc.tolist(), refs.tolist(), strict=True))
    return out


def _unique_refs(refs: np.ndarray) -> np.ndarray:
    seen: dict[str, int] = {}
    out = []
    for r in refs.tolist():
        k = seen.get(r, 0)
        seen[r] = k + 1
        out.append(r if k == 0 else f"{r}-{k}")
    return np.asarray(out)
