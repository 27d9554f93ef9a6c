"""Who plays which part: subscribers, adult-only buyers, and the holdings each person has.

Subscribers are drawn from the population and given register entries, convictions and
child-facing jobs at the shares in ``world.yaml`` (Ore's subscribers were over-represented in
all three); everyone else gets the population's base rates. Namesakes (another person with a
subscriber's name, on the register) test that linkage uses more than the name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ore.synth.config import Settings
from ore.synth.population import Population


@dataclass
class Cast:
    subscribers: np.ndarray  # person indices
    adult_only: np.ndarray
    buyer: np.ndarray  # bool per person: subscriber or adult-only
    on_register: np.ndarray  # bool per person
    contact_conviction: np.ndarray
    other_conviction: np.ndarray
    child_job: np.ndarray
    other_job: np.ndarray
    open_case: np.ndarray
    namesakes: int


def cast_people(rng: np.random.Generator, pop: Population, settings: Settings, subscribers: int) -> Cast:
    n = pop.size
    sub_cfg = settings["subscribers"]
    hold = settings["holdings"]
    n_adult = round(subscribers * float(sub_cfg["adult_only_per_subscriber"]))
    # pairs: two adults of one household who both subscribe (same surname, address and connection)
    n_pairs = min(subscribers // 2, round(subscribers * settings.rates["household_pair"] / 2))
    firsts = np.flatnonzero(np.diff(pop.hh, prepend=-1) != 0)  # first adult of each household
    multi = firsts[(firsts + 1 < n) & (pop.hh[np.minimum(firsts + 1, n - 1)] == pop.hh[firsts])]
    heads = rng.choice(multi, min(n_pairs, len(multi)), replace=False)
    paired = np.concatenate([heads, heads + 1])
    rest = np.setdiff1d(np.arange(n), paired)
    others = rng.choice(rest, subscribers - len(paired) + n_adult, replace=False)
    chosen = np.concatenate([paired, others])
    subs, adult = np.sort(chosen[:subscribers]), np.sort(chosen[subscribers:])
    buyer = np.zeros(n, bool)
    buyer[chosen] = True

    def base(rate: float) -> np.ndarray:
        return rng.random(n) < rate

    on_register = base(float(hold["register_rate"]))
    contact = np.zeros(n, bool)
    other_conv = base(float(hold["conviction_rate"]))
    jobs = base(float(hold["employment_rate"]))
    child_job = np.zeros(n, bool)
    open_case = base(float(hold["open_case_rate"]))
    k = len(subs)
    on_register[subs] = rng.random(k) < float(sub_cfg["on_register"])
    contact[subs] = rng.random(k) < float(sub_cfg["contact_child_conviction"])
    other_conv[subs] = rng.random(k) < float(sub_cfg["other_conviction"])
    child_job[subs] = rng.random(k) < float(sub_cfg["works_with_children"])
    jobs[subs] &= ~child_job[subs]
    open_case[subs] = rng.random(k) < float(sub_cfg["open_case"])

    # namesakes: someone else, elsewhere, with a subscriber's name, on the register
    n_names = round(k * settings.rates["namesake"])
    namesakes = 0
    if n_names:
        pool = np.flatnonzero(~buyer & ~on_register)
        others = rng.choice(pool, min(n_names, len(pool)), replace=False)
        models = rng.choice(subs, len(others), replace=False)
        pop.first[others] = pop.first[models]
        pop.last[others] = pop.last[models]
        pop.female[others] = pop.female[models]
        on_register[others] = True
        namesakes = len(others)
    return Cast(subs, adult, buyer, on_register, contact, other_conv, child_job, jobs, open_case, namesakes)
