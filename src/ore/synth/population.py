"""The invented population: households at addresses, adults with names, dates of birth and cards.

Everything is a numpy array indexed by person or household so that two million people take
seconds; strings are made only for the rows a file needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from ore.synth.cards import new_card_numbers
from ore.synth.config import Settings, load_data, words
from ore.synth.geography import INWARD, Geography

EPOCH = date(1970, 1, 1)


def rank_weights(n: int, shift: float = 8.0) -> np.ndarray:
    """Zipf-like weights for a list ordered from most to least common."""
    w = 1.0 / (np.arange(n) + shift)
    return w / w.sum()


def choice_from(rng: np.random.Generator, dist: dict, n: int) -> np.ndarray:
    """n draws from a {value: weight} mapping (values returned in their own type)."""
    keys = list(dist)
    p = np.asarray([float(v) for v in dist.values()])
    return np.asarray(keys)[rng.choice(len(keys), n, p=p / p.sum())]


@dataclass
class Names:
    first: np.ndarray  # male then female
    n_male: int
    surnames: np.ndarray
    streets: np.ndarray
    street_types: np.ndarray
    nicknames: dict[str, list[str]]


def load_names(settings: Settings) -> Names:
    data = load_data("names")
    male, female = words(data["male"]), words(data["female"])
    pop = settings["population"]
    return Names(
        first=np.asarray(male + female),
        n_male=len(male),
        surnames=np.asarray(words(data["surnames"])),
        streets=np.asarray(words(pop["streets"])),
        street_types=np.asarray(list(pop["street_types"])),
        nicknames=data["nicknames"],
    )


@dataclass
class Population:
    """People (index p) and households (index h); addresses are integer codes until written."""

    names: Names
    # households
    hh_district: np.ndarray
    hh_inward: np.ndarray
    hh_number: np.ndarray
    hh_flat: np.ndarray  # flat number within the building, 0 for a house
    hh_street: np.ndarray
    hh_type: np.ndarray
    hh_children: np.ndarray
    # people
    hh: np.ndarray
    female: np.ndarray
    first: np.ndarray
    last: np.ndarray
    dob: np.ndarray  # days since 1970-01-01
    moved: np.ndarray  # holdings record the old address below
    old_district: np.ndarray
    old_inward: np.ndarray
    old_number: np.ndarray
    old_flat: np.ndarray
    old_street: np.ndarray
    old_type: np.ndarray
    card1: np.ndarray
    card2: np.ndarray  # a second card, "" where the person has one
    card3: np.ndarray  # the replacement of card1 after a loss, "" where none was issued
    expiry: np.ndarray  # (3, people) MMYY of card1..card3

    def card(self, p: int, k: int = 1) -> tuple[str, str]:
        """Card k (1..3) of person p and its expiry "MM/YY"; ("", "") where the person has none."""
        number = str((self.card1, self.card2, self.card3)[k - 1][p])
        mmyy = int(self.expiry[k - 1, p])
        return (number, f"{mmyy // 100:02d}/{mmyy % 100:02d}") if number else ("", "")

    @property
    def size(self) -> int:
        return len(self.hh)

    # --- strings for one person (used for the few thousand people the leads name)
    def first_name(self, p: int) -> str:
        return str(self.names.first[self.first[p]])

    def last_name(self, p: int) -> str:
        return str(self.names.surnames[self.last[p]])

    def dob_iso(self, p: int) -> str:
        return date.fromordinal(EPOCH.toordinal() + int(self.dob[p])).isoformat()

    def address(self, p: int, geo: Geography, *, recorded: bool = False) -> tuple[str, str, str, str, str]:
        """(house, street name, street type, town, canonical postcode) of the current or recorded address;
        house is "12" or "Flat 3, 12"."""
        if recorded and self.moved[p]:
            d, i, n, s, t, f = (
                self.old_district[p],
                self.old_inward[p],
                self.old_number[p],
                self.old_street[p],
                self.old_type[p],
                self.old_flat[p],
            )
        else:
            h = self.hh[p]
            d, i, n, s, t, f = (
                self.hh_district[h],
                self.hh_inward[h],
                self.hh_number[h],
                self.hh_street[h],
                self.hh_type[h],
                self.hh_flat[h],
            )
        return (
            f"Flat {f}, {n}" if f else str(n),
            str(self.names.streets[s]),
            str(self.names.street_types[t]),
            str(geo.towns[d]),
            f"{geo.districts[d]} {INWARD[i]}",
        )

    def current_district(self, p: int) -> int:
        return int(self.hh_district[self.hh[p]])


def build_population(rng: np.random.Generator, people: int, geo: Geography, settings: Settings) -> Population:
    names = load_names(settings)
    pop = settings["population"]
    sizes_dist = {int(k): v for k, v in pop["adults_per_household"].items()}
    mean = sum(k * v for k, v in sizes_dist.items()) / sum(sizes_dist.values())
    n_hh = int(people / mean * 1.1) + 8
    sizes = choice_from(rng, sizes_dist, n_hh).astype(np.int64)
    cum = np.cumsum(sizes)
    n_hh = int(np.searchsorted(cum, people)) + 1
    sizes = sizes[:n_hh]
    sizes[-1] -= int(cum[n_hh - 1] - people)
    hh = np.repeat(np.arange(n_hh), sizes)

    n_dist = len(geo.districts)
    hh_district = rng.choice(n_dist, n_hh, p=geo.weights)
    hh_inward = rng.integers(0, len(INWARD), n_hh)
    hh_number = rng.integers(1, int(pop["house_number_max"]) + 1, n_hh)
    hh_flat = np.where(rng.random(n_hh) < float(pop["flats"]), rng.integers(1, 30, n_hh), 0)
    hh_street = rng.integers(0, len(names.streets), n_hh)
    st_w = np.asarray(list(pop["street_types"].values()), dtype=float)
    hh_type = rng.choice(len(st_w), n_hh, p=st_w / st_w.sum())
    kids = {int(k): v for k, v in pop["children_per_household"].items()}
    hh_children = choice_from(rng, kids, n_hh).astype(np.int64)

    female = rng.random(people) < 0.5
    n_male = names.n_male
    n_female = len(names.first) - n_male
    first = np.where(
        female,
        n_male + rng.choice(n_female, people, p=rank_weights(n_female)),
        rng.choice(n_male, people, p=rank_weights(n_male)),
    )
    hh_surname = rng.choice(len(names.surnames), n_hh, p=rank_weights(len(names.surnames)))
    own_surname = rng.choice(len(names.surnames), people, p=rank_weights(len(names.surnames)))
    shares = rng.random(people) < float(pop["shared_surname"])
    last = np.where(shares, hh_surname[hh], own_surname)

    lo, hi = pop["adult_age"]
    age_days = ((lo + rng.beta(2.0, 3.0, people) * (hi - lo)) * 365.25).astype(np.int64)
    ref = (date(2002, 1, 1) - EPOCH).days
    dob = ref - age_days

    rates = settings.rates
    moved = rng.random(people) < rates["moved"]
    # most moves are local: a district of the same area, else anywhere
    old_district = rng.choice(n_dist, people, p=geo.weights)
    local = rng.random(people) < 0.6
    cur_area = geo.area_of[hh_district[hh]]
    area_sizes = np.bincount(geo.area_of, minlength=len(geo.areas))
    area_start = np.concatenate([[0], np.cumsum(area_sizes)[:-1]])  # districts are grouped by area
    local_pick = area_start[cur_area] + (rng.random(people) * area_sizes[cur_area]).astype(np.int64)
    old_district = np.where(local, local_pick, old_district)
    old_inward = rng.integers(0, len(INWARD), people)
    old_number = rng.integers(1, int(pop["house_number_max"]) + 1, people)
    old_flat = np.where(rng.random(people) < float(pop["flats"]), rng.integers(1, 30, people), 0)
    old_street = rng.integers(0, len(names.streets), people)
    old_type = rng.choice(len(st_w), people, p=st_w / st_w.sum())

    has_two = rng.random(people) < float(pop["second_card"])
    reissued = rng.random(people) < float(pop["reissued_card"])
    n2, n3 = int(has_two.sum()), int(reissued.sum())
    cards = new_card_numbers(rng, people + n2 + n3, [str(b) for b in pop["bins"]])
    card1 = cards[:people]
    card2 = np.full(people, "", dtype="U16")
    card2[has_two] = cards[people : people + n2]
    card3 = np.full(people, "", dtype="U16")
    card3[reissued] = cards[people + n2 :]
    expiry = (rng.integers(1, 13, (3, people)) * 100 + rng.integers(2, 7, (3, people))).astype(np.int16)
    return Population(
        names=names,
        hh_district=hh_district,
        hh_inward=hh_inward,
        hh_number=hh_number,
        hh_flat=hh_flat,
        hh_street=hh_street,
        hh_type=hh_type,
        hh_children=hh_children,
        hh=hh,
        female=female,
        first=first,
        last=last,
        dob=dob,
        moved=moved,
        old_district=old_district,
        old_inward=old_inward,
        old_number=old_number,
        old_flat=old_flat,
        old_street=old_street,
        old_type=old_type,
        card1=card1,
        card2=card2,
        card3=card3,
        expiry=expiry,
    )
