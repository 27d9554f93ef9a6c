"""CPORT: the score is the sum of the items; one unknown item gives a range, two none; the rank is monotone
in the score; published figures are shown only where a listed source gives them."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ore.errors import OreError
from ore.watch.cport import Score, item_value, published_context, score, tool

CODES = tool().codes
ANSWER = st.sampled_from([0, 1, None])


def test_the_tool_is_the_published_seven_items_with_sources() -> None:
    t = tool()
    assert len(t.items) == 7 and t.max_missing == 1
    assert t.items[0].text.startswith("Age 35 or under") and "boy than girl" in t.items[6].text
    assert t.sources["development"]["doi"] == "10.1037/lhb0000128"
    assert "Seto" in t.sources["development"]["cite"] and "2015" in t.sources["development"]["cite"]
    p = t.published
    assert (p["rate_range"]["low"], p["rate_range"]["high"]) == (0.03, 0.41)
    assert p["median_score"]["score"] == 2 and p["relative_rates"][0]["score"] == 5
    assert p["rates_by_score"] == {}  # no per-score rate is published in the sources held


@pytest.mark.parametrize("bits", list(itertools.product([0, 1], repeat=7)))
def test_every_complete_assessment_scores_the_sum_of_its_items(bits: tuple[int, ...]) -> None:
    s = score(dict(zip(CODES, bits, strict=True)))
    assert (s.low, s.high, s.missing) == (sum(bits), sum(bits), ())
    assert s.shown() == str(sum(bits))


@given(st.lists(ANSWER, min_size=7, max_size=7))
def test_unknown_items_are_never_scored_as_if_known(answers: list[int | None]) -> None:
    s = score(dict(zip(CODES, answers, strict=True)))
    unknown = answers.count(None)
    known = sum(a for a in answers if a is not None)
    if unknown == 0:
        assert (s.low, s.high) == (known, known)
    elif unknown == 1:  # the range it must lie in: the unknown item adds 0 or 1
        assert (s.low, s.high) == (known, known + 1) and s.shown() == f"{known}-{known + 1}"
        assert s.missing == tuple(c for c, a in zip(CODES, answers, strict=True) if a is None)
    else:  # more than one unknown: no score at all, and no published figure
        assert not s.scored and s.low is None and s.high is None
        assert "not scorable" in s.shown() and published_context(s) == []


def test_the_rank_is_monotone_in_the_score_and_a_range_sits_between_its_ends() -> None:
    scores = [Score(n, n, ()) for n in range(8)] + [Score(n, n + 1, ("x",)) for n in range(7)] + [
        Score(None, None, ("a", "b"))]
    random.Random(1).shuffle(scores)
    ranked = sorted(scores, key=Score.rank_key, reverse=True)
    for a, b in itertools.pairwise(ranked):
        if a.scored and b.scored:
            assert (a.low, a.high) >= (b.low, b.high)
            assert a.low + a.high >= b.low + b.high  # type: ignore[operator]
    assert not ranked[-1].scored  # not scorable: after every scored person, never dropped
    assert [s.shown() for s in ranked[:3]] == ["7", "6-7", "6"]


def test_published_figures_only_where_published() -> None:
    five, two, three = (published_context(score(dict(zip(CODES, bits, strict=True))))
                        for bits in ([1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0]))
    assert any("about 5 times the rate of score 2" in line for line in five)
    assert any("median score" in line and "64th percentile" in line for line in two)
    assert len(three) == 1 and "3% to 41%" in three[0]  # the range across scores, no rate for 3 itself
    assert all("doi:" in line for line in five + two + three)
    partial = published_context(score(dict(zip(CODES, [1, 1, 1, 1, 1, 0, None], strict=True))))
    assert len(partial) == 1  # 5-6 is not "5": nothing said about score 5 itself


def test_answers_are_read_strictly() -> None:
    assert [item_value(v, "x") for v in ("yes", "No", "1", 0, True, None, "unknown", "")] == [1, 0, 1, 0, 1, None,
                                                                                                None, None]
    with pytest.raises(OreError, match="CPORT item x: 'maybe'"):
        item_value("maybe", "x")
    with pytest.raises(OreError, match="CPORT has no item age"):
        score({"age": 1})
