"""How people (and fraudsters) type: typos, nicknames, initials, case, formats.

Used per lead row, in Python: leads are few (thousands to hundreds of thousands) and the
variety of mistakes matters more than speed here.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ore.synth.geography import canonical

_KEYBOARD = {
    "a": "qwsz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}


def typo(rng: random.Random, s: str) -> str:
    """One slip of the keyboard: a neighbouring key, a dropped, doubled or swapped letter."""
    letters = [i for i, c in enumerate(s) if c.isalpha()]
    if len(letters) < 3:
        return s
    i = rng.choice(letters[1:])  # people rarely get the first letter wrong
    c = s[i]
    kind = rng.random()
    if kind < 0.35:
        near = _KEYBOARD.get(c.lower(), c.lower())
        r = rng.choice(near)
        return s[:i] + (r.upper() if c.isupper() else r) + s[i + 1 :]
    if kind < 0.6:
        return s[:i] + s[i + 1 :]
    if kind < 0.8:
        return s[:i] + c + s[i:]
    if i + 1 < len(s) and s[i + 1].isalpha():
        return s[:i] + s[i + 1] + c + s[i + 2 :]
    return s[:i] + s[i + 1 :]


def cased(rng: random.Random, s: str, rate: float) -> str:
    if rng.random() >= rate:
        return s
    return s.upper() if rng.random() < 0.6 else s.lower()


@dataclass
class Typist:
    """One person's typing habits, fixed for all their orders (a nickname is a habit, not noise)."""

    rng: random.Random
    rates: dict[str, float]
    nickname: str | None = None
    abbreviates: bool = False
    postcode_style: int = 0  # 0 canonical, 1 no space, 2 lower case, 3 both

    @classmethod
    def for_person(
        cls, rng: random.Random, rates: dict[str, float], formal_first: str, nicknames: dict[str, list[str]]
    ) -> Typist:
        nick = None
        if formal_first in nicknames and rng.random() < rates["nickname"]:
            nick = rng.choice(nicknames[formal_first])
        style = rng.choice((1, 2, 3)) if rng.random() < rates["postcode_format"] else 0
        return cls(rng, rates, nick, rng.random() < rates["address_abbrev"], style)

    def chance(self, key: str) -> bool:
        return self.rng.random() < self.rates[key]

    def first(self, formal: str) -> str:
        name = self.nickname if self.nickname and self.rng.random() < 0.85 else formal
        if self.chance("initial"):
            return name[0]
        return typo(self.rng, name) if self.chance("typo") else name

    def last(self, formal: str) -> str:
        if self.chance("initial") and self.rng.random() < 0.3:
            return formal[0]
        name = formal
        if ("'" in name or "-" in name) and self.rng.random() < 0.4:  # O'Brien -> OBrien, O Brien
            name = name.replace("'", self.rng.choice(("", " "))).replace("-", self.rng.choice((" ", "")))
        elif name.startswith("Mc") and self.rng.random() < 0.3:
            name = self.rng.choice(("Mc" + name[2:].lower(), "Mac" + name[2:]))
        return typo(self.rng, name) if self.chance("typo") else name

    def address_lines(
        self, house: str, street: str, street_type: str, abbrev: dict[str, str]
    ) -> tuple[str, str]:
        """Lines 1 and 2 of an address as typed: flats go in line 1, in line 2, or are left out."""
        stype = (
            abbrev.get(street_type, street_type)
            if self.abbreviates and self.rng.random() < 0.8
            else street_type
        )
        line2 = ""
        number = house
        if house.startswith("Flat "):
            flat, number = house[5:].split(", ")
            r = self.rng.random()
            if r < 0.45:
                number = house
            elif r < 0.75:
                line2 = f"Flat {flat}"
            elif r < 0.9:
                number = f"{flat}/{number}" if self.rng.random() < 0.5 else f"Flat {flat} {number}"
        sep = ", " if self.rng.random() < 0.05 else " "
        line = f"{number}{sep}{street} {stype}"
        if self.chance("typo"):
            line = typo(self.rng, line)
        return cased(self.rng, line, self.rates["case_variation"] * 0.5), line2

    def town(self, town: str) -> str:
        if self.chance("typo") and self.rng.random() < 0.5:
            town = typo(self.rng, town)
        return cased(self.rng, town, self.rates["case_variation"] * 0.3)

    def postcode(self, pc: str) -> str:
        if self.chance("postcode_typo"):
            pc = postcode_typo(self.rng, pc)
        style = self.postcode_style if self.rng.random() < 0.85 else 0
        if style in (1, 3):
            pc = pc.replace(" ", "")
        if style in (2, 3):
            pc = pc.lower()
        return pc

    def dob(self, iso: str) -> str:
        if self.chance("dob_missing"):
            return ""
        if self.chance("dob_typo"):
            y, m, d = iso.split("-")
            if int(d) <= 12 and d != m:
                return f"{y}-{d}-{m}"
            return f"{int(y) + self.rng.choice((-1, 1, 10))}-{m}-{d}"
        return iso


def postcode_typo(rng: random.Random, pc: str) -> str:
    """A wrong character of the inward code (so the district and force usually stay right)."""
    canon = canonical(pc)
    out, inward = canon[:-3], canon[-3:]
    i = rng.randrange(3)
    repl = rng.choice("0123456789") if i == 0 else rng.choice("ABDEFGHJLNPQRSTUWXYZ")
    return f"{out}{inward[:i]}{repl}{inward[i + 1 :]}"


def email_local(rng: random.Random, first: str, last: str, birth_year: int) -> str:
    """An email local part of the kinds people chose around 2000."""
    f, la = re.sub(r"[^a-z]", "", first.lower()), re.sub(r"[^a-z]", "", last.lower())
    n = rng.randrange(1, 999)
    yy = birth_year % 100
    forms = (
        f"{f}.{la}",
        f"{f}{la}",
        f"{f[0]}{la}",
        f"{la}{f[0]}{yy:02d}",
        f"{f}_{n}",
        f"{f}{la}{yy:02d}",
        f"{f}.{la}{n}",
        f"{la}.{f}",
        f"{f[0]}.{la}",
        f"{f}{n}",
    )
    return rng.choice(forms)
