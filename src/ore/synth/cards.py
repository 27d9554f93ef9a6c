"""Invented card numbers that pass the Luhn check, from realistic UK BIN prefixes."""

from __future__ import annotations

import numpy as np

_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)


def luhn_check_digit(body: np.ndarray) -> np.ndarray:
    """Check digits for rows of digits (n, k) so that body + digit passes Luhn."""
    k = body.shape[1]
    # counted from the right of the full number, the body's last digit is doubled
    first_doubled = (k - 1) % 2
    total = _DOUBLED[body[:, first_doubled::2]].sum(axis=1, dtype=np.int64)
    total += body[:, 1 - first_doubled :: 2].sum(axis=1, dtype=np.int64)
    return ((10 - total % 10) % 10).astype(np.uint8)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, dgt in enumerate(reversed(digits)):
        if i % 2 == 1:
            dgt *= 2
            if dgt > 9:
                dgt -= 9
        total += dgt
    return len(digits) >= 12 and total % 10 == 0


def new_card_numbers(rng: np.random.Generator, n: int, bins: list[str]) -> np.ndarray:
    """n distinct 16-digit card numbers (as strings) with the given BINs and a valid check digit."""
    bin_digits = np.array([[int(c) for c in b] for b in bins], dtype=np.uint8)
    powers = 10 ** np.arange(15, -1, -1, dtype=np.int64)

    def draw(k: int) -> np.ndarray:
        full = np.empty((k, 16), dtype=np.uint8)
        full[:, :6] = bin_digits[rng.integers(0, len(bins), k)]
        full[:, 6:15] = rng.integers(0, 10, (k, 9), dtype=np.uint8)
        full[:, 15] = luhn_check_digit(full[:, :15])
        return full

    extra = 16 + n // 500  # collisions are rare: draw a few more and keep first occurrences
    while True:
        digits = draw(n + extra)
        _, first = np.unique(digits.astype(np.int64) @ powers, return_index=True)
        if len(first) >= n:
            digits = digits[np.sort(first)[:n]]
            break
        extra *= 4  # pragma: no cover - only with a tiny BIN space
    return (digits + ord("0")).view("S16").ravel().astype("U16")


def typed(number: str, style: int) -> str:
    """The card number as a person typed it: plain, in groups of four with spaces, or dashes."""
    if style == 0:
        return number
    sep = " " if style == 1 else "-"
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))
