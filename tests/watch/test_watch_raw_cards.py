"""The raw-card fast path (a feed's clear numbers checked in bulk, deduplicated as integers, tokenised per
distinct number) gives, row by row, exactly what ingest gives: the same token as ``Tokeniser.token`` for
every number ingest accepts, and the same rejection message for every number it refuses."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ore.ingest.cards import CardError, Tokeniser, card_digits
from ore.watch import cards
from ore.watch import feed as feeds
from ore.watch.engine import DuckDBEngine

KEY = bytes(range(100, 132))


def _luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it pass Luhn."""
    for d in "0123456789":
        try:
            return card_digits(body + d)
        except CardError:
            continue
    raise AssertionError(body)


def _formatted(digits: str, rng: random.Random) -> str:
    """The digits as a person or a processor might type them: grouped by spaces or dashes, padded."""
    style = rng.randrange(5)
    if style == 0:
        return digits
    if style == 1:
        return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))
    if style == 2:
        return "-".join(digits[i:i + 4] for i in range(0, len(digits), 4))
    if style == 3:
        return f"  {digits[:6]} - {digits[6:]} "
    return "".join(c + ("-" if rng.random() < 0.2 else "") for c in digits)


def mixed_numbers(seed: int = 11, many: int = 400) -> list[str]:
    """Valid numbers of every length 12-19 (leading zeros too), each also formatted and repeated; bad Luhn,
    too short, too long, letters, other scripts' digits, other punctuation."""
    rng = random.Random(seed)
    out = ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", " 4111111111111111 ",
           "4111111111111112",  # bad Luhn
           "41111111111", "4111 1111 111",  # too short (11 digits)
           "41111111111111111111",  # too long (20)
           "4111a11111111111", "ABCDEFGHIJKLMNOP", "4111 1111 1111 111x", "4111.1111.1111.1111",
           "4111_1111_1111_1111", "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits
           "４１１１１１１１１１１１１１１１",  # full-width digits
           "0000000000000000", "000000000000", "0000 0000 0000", "9" * 19, "1", "12", "4-",
           "é4111111111111111"]
    for _ in range(many):
        width = rng.randint(12, 19)
        body = ("0" * rng.randint(0, 3) + "".join(rng.choice("0123456789") for _ in range(width)))[:width - 1]
        good = _luhn_complete(body)
        out.append(_formatted(good, rng))
        if rng.random() < 0.3:
            out.append(_formatted(good, rng))  # the same card, typed again
        bad = good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)
        out.append(_formatted(bad, rng))  # Luhn fails
        out.append(_formatted(good[:rng.randint(1, 11)], rng))  # too short
        out.append(_formatted(good + "0" * rng.randint(20 - width, 8), rng))  # too long
        spot = rng.randrange(width)
        out.append(good[:spot] + rng.choice("xO/.#+") + good[spot + 1:])  # a stray character
    rng.shuffle(out)
    return out


def ingest_view(raw: str) -> tuple[str, str]:
    """What ingest makes of one typed number: ("token", token) or ("problem", message)."""
    try:
        return "token", Tokeniser(KEY, 1).token(card_digits(raw))
    except CardError as e:
        return "problem", str(e)


def fast_view(tmp_path: Path, numbers: list[str], workers: int) -> dict[int, tuple[str, str]]:
    """Per feed line, what the screen's raw path makes of its number (a CSV feed read as the screen reads it)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["transaction_time", "card_number"])
    w.writerows(["2024-01-01", n] for n in numbers)
    path = tmp_path / "raw.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    f = feeds.open_feed(path)
    con = duckdb.connect()
    try:
        feeds.load(con, f)
        feeds.parse(con, f)
        feeds.keep_keys(con, f)
        valid = feeds.check_cards(con)
        DuckDBEngine._tokenise(con, valid, {1: KEY}, [1], workers)
        seen: dict[int, tuple[str, str]] = {}
        for line, token in con.execute("SELECT f.line, lower(hex(t.token_bin)) FROM feed_keys f "
                                       "JOIN card_tokens t USING (card_digits)").fetchall():
            assert line not in seen, f"line {line} has two tokens"
            seen[line] = ("token", token)
        for line, field, message in feeds.problems(con):
            assert field == "card_number" and line not in seen, f"line {line}: {field}: {message}"
            seen[line] = ("problem", message)
        assert len(valid) == len(set(valid.to_pylist())), "a number was tokenised twice"
        return seen
    finally:
        con.close()


def expected_view(numbers: list[str]) -> dict[int, tuple[str, str]]:
    return {line: ingest_view(n) for line, n in enumerate(numbers, start=2) if n.strip()}


@pytest.mark.parametrize("block", [cards.CHECK_CHUNK, 7])  # 7: blocks that mix lengths and split runs
def test_raw_path_tokens_and_rejections_are_ingests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     block: int) -> None:
    monkeypatch.setattr(cards, "CHECK_CHUNK", block)
    monkeypatch.setattr(cards, "HASH_CHUNK", 5)
    numbers = mixed_numbers()
    expected = expected_view(numbers)
    assert {kind for kind, _ in expected.values()} == {"token", "problem"}
    messages = {m for kind, m in expected.values() if kind == "problem"}
    assert any("Luhn" in m for m in messages) and any("digits (a card" in m for m in messages)
    assert any("other than digits" in m for m in messages)
    assert fast_view(tmp_path, numbers, workers=1) == expected


def test_raw_path_in_worker_processes_is_ingests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cards, "PARALLEL_FROM", 10)
    numbers = mixed_numbers(seed=5, many=150)
    assert fast_view(tmp_path, numbers, workers=2) == expected_view(numbers)


@given(st.lists(st.text(alphabet="0123456789 -x\t\u00a0", min_size=1, max_size=24), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_raw_path_on_any_typed_numbers_is_ingests(numbers: list[str]) -> None:
    """Typed any way, padded with tabs or no-break spaces, or nothing but separators ("-", which ingest refuses)."""
    import tempfile

    numbers = [n for n in numbers if n.strip()]  # blank: no card, for both
    if not numbers:
        return
    with tempfile.TemporaryDirectory() as d:
        assert fast_view(Path(d), numbers, workers=1) == expected_view(numbers)


def test_distinct_rows_tell_leading_zeros_apart() -> None:
    import pyarrow as pa

    numbers = ["000000000000", "0000000000000", "000000000000", "0000000000000000", "4111111111111111",
               "4111111111111111"]
    codes, widths, values = cards.scan(pa.array(numbers))
    assert codes.tolist() == [cards.OK] * 6
    kept = sorted(numbers[i] for i in cards.distinct_rows(widths, values))
    assert kept == sorted(set(numbers))


@pytest.mark.parametrize("block", [cards.CHECK_CHUNK, 1])
def test_checking_never_changes_the_numbers_it_reads(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    import pyarrow as pa

    monkeypatch.setattr(cards, "CHECK_CHUNK", block)
    numbers = ["4111111111111111", "067980166559616895", "4111111111111112", "41111"]
    array = pa.array(numbers)
    cards.scan(array)
    assert array.to_pylist() == numbers
