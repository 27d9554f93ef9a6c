"""Rows the spec says must be quarantined, one defect each, labelled with its category.

They are copies of real orders with one thing broken, so that they look like the rest of the
package apart from the defect: a quarantine rule, not a pattern, has to catch them.
"""

from __future__ import annotations

import random

from ore.synth.cards import luhn_ok
from ore.synth.orders import Row

CATEGORIES = (
    "no_record_id",
    "duplicate_record_id",
    "bad_luhn",
    "no_card",
    "bad_time",
    "future_time",
    "bad_amount",
)
_BAD_TIMES = (
    "yesterday",
    "2001-13-45T99:00:00",
    "31/02/2001 25:61",
    "2001-02-30T10:00:00",
    "n/a",
    "20011305",
)
_BAD_AMOUNTS = ("twenty", "-5.00", "0.00", "NaN", "inf", "-29.95", "29,95,00")


def break_luhn(number: str, rng: random.Random) -> str:
    """Change one digit so the number fails the Luhn check (any single-digit change does)."""
    positions = [i for i, c in enumerate(number) if c.isdigit()]
    i = rng.choice(positions[-6:])
    d = int(number[i])
    new = str((d + rng.randint(1, 9)) % 10)
    out = number[:i] + new + number[i + 1 :]
    assert not luhn_ok(out)
    return out


def malformed_rows(rng: random.Random, valid: list[Row], per_category: int) -> list[Row]:
    """Copies of valid rows, each broken in one way; duplicates get their record id later."""
    out: list[Row] = []
    for cat in CATEGORIES:
        for _ in range(per_category):
            src = rng.choice(valid)
            values = dict(src.values)
            t = src.t + rng.randint(60, 86_400)
            if cat == "bad_luhn":
                values["card_number"] = break_luhn(values["card_number"], rng)
            elif cat == "no_card":
                values["card_number"] = ""
            elif cat == "bad_time":
                values["transaction_time"] = rng.choice(_BAD_TIMES)
            elif cat == "future_time":
                # a year typed a century out (2102 for 2002): always in the future
                values["transaction_time"] = (
                    str(int(values["transaction_time"][:4]) + 100) + values["transaction_time"][4:]
                )
            elif cat == "bad_amount":
                values["amount"] = rng.choice(_BAD_AMOUNTS)
            out.append(Row(values, t, "malformed", "", "", cat))
    return out
