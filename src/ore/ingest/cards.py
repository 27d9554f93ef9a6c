"""Card numbers: validation, keyed tokens and masking.

A token (HMAC-SHA256 of the digits under the workspace key) links records of one
card without the number; only the first six and last four digits are kept for
people to read. No function here returns or logs a clear number.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_SEPARATORS = re.compile(r"[ \-]")
# Runs of 12-19 digits, grouped by spaces or dashes as ``card_digits`` accepts them ("4111 - 1111 ..."
# too): anything that could be a card number.
_CARDLIKE = re.compile(r"(?<!\d)(?:\d[ \-]*){11,18}\d(?!\d)")


class CardError(ValueError):
    """A card number that cannot be accepted; the message never contains the number."""


def card_digits(raw: str) -> str:
    """The digits of a card number as typed, or ``CardError`` saying what is wrong."""
    text = raw.strip()
    if not text:
        raise CardError("card_number is missing")
    digits = _SEPARATORS.sub("", text)
    if not digits.isdigit() or not digits.isascii():
        raise CardError("card_number has characters other than digits, spaces and dashes")
    if not 12 <= len(digits) <= 19:
        raise CardError(f"card_number has {len(digits)} digits (a card has 12 to 19)")
    if not luhn_ok(digits):
        raise CardError("card_number fails Luhn check")
    return digits


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask(digits: str) -> str:
    """First six and last four digits, the rest hidden (what PCI DSS allows to be shown)."""
    if len(digits) < 12:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_text(text: str) -> str:
    """Mask every card-like digit run in free text (quarantined rows, error messages)."""
    return _CARDLIKE.sub(lambda m: mask(_SEPARATORS.sub("", m.group(0))), text)


def hide_number(text: str, digits: str) -> str:
    """``text`` with the card ``digits`` (however grouped) masked wherever they stand, even in a longer number."""
    if digits not in text.replace(" ", "").replace("-", ""):  # the common case, and cheap
        return text
    typed = re.compile("[ \\-]*".join(digits))
    return typed.sub(mask(digits), text)


class Tokeniser:
    """Keyed tokens of card numbers; one keyed HMAC object copied per card for speed.

    During a key rotation (``next_key`` given) each card is tokenised under the new key as
    well: ``pairs`` maps every token made to the same card's token under the new key, so the
    data can later be moved to the new key (``ore keys rekey``) without the clear numbers.
    """

    def __init__(self, key: bytes, version: int, next_key: tuple[int, bytes] | None = None) -> None:
        self.version = version
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self.next_version: int | None = next_key[0] if next_key else None
        self._next = hmac.new(next_key[1], digestmod=hashlib.sha256) if next_key else None
        self.pairs: dict[str, str] = {}

    def token(self, digits: str) -> str:
        h = self._base.copy()
        h.update(digits.encode("ascii"))
        token = h.hexdigest()
        if self._next is not None and token not in self.pairs:
            n = self._next.copy()
            n.update(digits.encode("ascii"))
            self.pairs[token] = n.hexdigest()
        return token


def key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it: HMAC-SHA256 of a fixed label under the key, first 16 hex digits.

    Two copies of one key show the same fingerprint; the fingerprint gives nothing towards the
    key or any card's token (the label is not a card number).
    """
    return hmac.new(key, b"ore card-token key fingerprint", hashlib.sha256).hexdigest()[:16]
