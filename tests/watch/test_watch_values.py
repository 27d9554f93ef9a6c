"""The watch's value rules: normalised emails, account names and descriptors; card tokens in bulk equal
ingest's; card checks in bulk equal ingest's."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ore.ingest.cards import CardError, Tokeniser, card_digits, luhn_ok
from ore.watch import cards
from ore.watch.normalise import descriptor_sql, normalise


@pytest.mark.parametrize(("typed", "expected"), [
    ("J.O.Smith+new@GoogleMail.com ", "josmith@gmail.com"),
    ("josmith@gmail.com", "josmith@gmail.com"),
    ("Jo+tag@AOL.com", "jo@aol.com"),
    ("jo.smith@aol.com", "jo.smith@aol.com"),  # dots matter outside Gmail
    ("+only@aol.com", "+only@aol.com"),  # a mailbox that is all tag is left as typed
    ("no-at-sign", "no-at-sign"),
    ("   ", None),
    ("", None),
])
def test_emails(typed: str, expected: str | None) -> None:
    assert normalise("email", typed) == expected


def test_account_names_and_descriptors() -> None:
    assert normalise("username", "  MBurke ") == "mburke"
    assert normalise("merchant", "KEYZ*AV  services") == normalise("merchant", "keyz av services") == "KEYZ AV SERVICES"
    assert normalise("product", "child-site-01") == "CHILD SITE 01"
    assert normalise("merchant", "***") is None


@given(st.text(max_size=40), st.sampled_from(["email", "username", "merchant", "product"]))
@settings(max_examples=200, deadline=None)
def test_normalising_twice_changes_nothing(text: str, kind: str) -> None:
    once = normalise(kind, text)
    assert once is None or normalise(kind, once) == once


def test_spark_dialect_drops_only_duckdbs_flag() -> None:
    assert descriptor_sql("m", "duckdb").replace(", 'g'", "") == descriptor_sql("m", "spark")


@given(st.lists(st.text(alphabet="0123456789", min_size=12, max_size=19), min_size=1, max_size=50),
       st.binary(min_size=32, max_size=32))
@settings(max_examples=50, deadline=None)
def test_bulk_tokens_are_ingests_tokens(numbers: list[str], key: bytes) -> None:
    expected = [Tokeniser(key, 1).token(n) for n in numbers]
    assert cards.tokens(key, numbers, workers=1).to_pylist() == expected
    assert cards.tokens(key, pa.array(numbers), workers=1).to_pylist() == expected


def test_bulk_tokens_in_worker_processes_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cards, "PARALLEL_FROM", 10)
    numbers = [str(4000000000000000 + 7919 * i) for i in range(101)]
    key = bytes(range(32))
    assert cards.tokens(key, numbers, workers=3).to_pylist() == [Tokeniser(key, 1).token(n) for n in numbers]


@given(st.lists(st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=22),
                         st.text(alphabet="0123456789x٣ ", min_size=1, max_size=20)), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_bulk_card_checks_are_ingests(numbers: list[str]) -> None:
    """The codes say what ingest's ``card_digits`` says of each number (spaces already removed)."""
    numbers = [n.replace(" ", "") or "0" for n in numbers]
    expected = []
    for n in numbers:
        try:
            card_digits(n)
            expected.append(cards.OK)
        except CardError as e:
            expected.append({"characters": cards.NOT_DIGITS, "digits (a card": cards.LENGTH,
                             "Luhn": cards.LUHN}[next(k for k in ("characters", "digits (a card", "Luhn")
                                                      if k in str(e))])
    assert cards.number_problems(pa.array(numbers)).tolist() == expected
    assert all(luhn_ok(n) for n, code in zip(numbers, expected, strict=True) if code == cards.OK)

