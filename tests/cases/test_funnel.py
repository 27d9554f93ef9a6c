"""The funnel, counted from case rows: Operation Ore's April 2004 outcomes driven through the lifecycle,
and the report formats (CSV neutralised, HTML self-contained)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from casekit import T0, add_people
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ore.cases import Request, funnel, record_safeguarding, transition_many
from ore.report.funnel import funnel_csv, funnel_html, safe_cell
from ore.store.models import Case, Person

# Operation Ore, April 2004 (figures as reported then).
IDENTIFIED, ARRESTED, CHARGED, CONVICTED, CHILDREN_SAFEGUARDED = 7_200, 3_537, 1_679, 1_230, 102
BANDS = {"P1": 1_200, "P2": 900, "P3": 2_100, "P4": 3_000}
FIRST_ACTION_AFTER = {"P1": timedelta(hours=20), "P2": timedelta(days=5), "P3": timedelta(days=10),
                      "P4": timedelta(days=25)}
GRADE_C = 150  # some arrests on grade C, each with a supervisor's override


def ore_april_2004(store) -> dict[str, int]:
    """7,200 people through the lifecycle, in bulk; returns the outcomes it drove."""
    start = 0
    for band, n in BANDS.items():
        add_people(store, n, band=band, start=start, grade="A")
        start += n
    with store.session() as s:
        cases = list(s.scalars(select(Case).join(Case.person).options(joinedload(Case.person))
                               .order_by(Person.person_ref)))
        assert len(cases) == IDENTIFIED
        for c in cases[:GRADE_C]:
            c.person.evidence_grade = "C"
        steps = []
        for c in cases:
            steps += [(c, Request("triaged", by="sup.ops", reason="band confirmed", at=T0, band=c.recommended_band)),
                      (c, Request("disseminated", by="sup.ops", reason="to the force", at=T0)),
                      (c, Request("accepted", by="force.spoc", reason="accepted", at=T0 + timedelta(hours=1))),
                      (c, Request("under_investigation", by="dc", reason="opened", at=T0 + timedelta(hours=2)))]
        transition_many(s, steps)

        def act(c: Case) -> object:
            return T0 + FIRST_ACTION_AFTER[c.band]

        arrested, rest = cases[:ARRESTED], cases[ARRESTED:]
        steps = []
        for c in arrested:
            grade_c = c.person.evidence_grade == "C"
            steps.append((c, Request("arrested", by="dc", reason="warrant executed", at=act(c),
                                     override_by="insp.ore" if grade_c else None,
                                     override_reason="identity confirmed with the card issuer" if grade_c else None)))
        charged, not_charged = arrested[:CHARGED], arrested[CHARGED:]
        later = lambda c, days: act(c) + timedelta(days=days)  # noqa: E731
        for c in charged:
            steps.append((c, Request("charged", by="cps", reason="charged", at=later(c, 30))))
        for c in charged[:CONVICTED]:
            steps.append((c, Request("convicted", by="court", reason="guilty", at=later(c, 200))))
        acquitted = charged[CONVICTED:CONVICTED + 150]
        for c in acquitted:
            steps.append((c, Request("acquitted", by="court", reason="not guilty", at=later(c, 200))))
        cautioned, nfa, released = not_charged[:700], not_charged[700:1500], not_charged[1500:1700]
        for group, to in ((cautioned, "cautioned"), (nfa, "no_further_action"), (released, "released")):
            for c in group:
                steps.append((c, Request(to, by="custody", reason=to, at=later(c, 2))))
        eliminated = rest[:600]  # card-fraud victims found before any arrest
        for c in eliminated:
            steps.append((c, Request("eliminated", by="dci", reason="card used by another", at=act(c),
                                     ground="card_fraud_victim")))
        interviewed_nfa = rest[600:1400]
        for c in interviewed_nfa:
            steps += [(c, Request("interviewed", by="dc", reason="voluntary interview", at=act(c))),
                      (c, Request("no_further_action", by="dc", reason="no evidence", at=later(c, 3)))]
        transition_many(s, steps)
        # 102 children safeguarded in 40 cases (a few identified and not yet safeguarded)
        for i, c in enumerate(charged[:40]):
            n = 3 if i < 22 else 2  # 22*3 + 18*2 = 102
            record_safeguarding(s, c, identified=n + (1 if i % 10 == 0 else 0), safeguarded=n,
                                agency="local authority children's services", by="dc")
    return {"cautioned": len(cautioned), "no_further_action": len(nfa) + len(interviewed_nfa),
            "eliminated": len(eliminated), "acquitted": len(acquitted), "released": len(released)}


def test_operation_ore_april_2004_funnel_from_case_rows(store) -> None:
    started = time.perf_counter()
    outcomes = ore_april_2004(store)
    with store.session() as s:
        f = funnel(s, by="band")
    seconds = time.perf_counter() - started
    c = f.total.counts
    assert (c["identified"], c["arrested"], c["charged"], c["convicted"], c["children_safeguarded"]) == (
        IDENTIFIED, ARRESTED, CHARGED, CONVICTED, CHILDREN_SAFEGUARDED)
    for k, v in outcomes.items():
        assert c[k] == v, k
    assert c["disseminated"] == IDENTIFIED
    assert f.inconsistencies() == []
    assert {r.group: r.counts["identified"] for r in f.rows} == BANDS
    assert f.median_to_first_action == FIRST_ACTION_AFTER
    if store.dialect == "sqlite":
        assert seconds < 20, f"the April 2004 operation took {seconds:.1f} s"
    by_force = None
    with store.session() as s:
        by_force = funnel(s, by="force")
    assert [r.group for r in by_force.rows] == ["MPS"] and by_force.inconsistencies() == []


def test_csv_and_html_reports(store) -> None:
    add_people(store, 3, force="=HYPERLINK(\"x\")")
    with store.session() as s:
        f = funnel(s, by="force")
    text = funnel_csv(f)
    assert text.splitlines()[0].startswith("force,identified,")
    assert "'=HYPERLINK" in text and "\n=" not in text
    html = funnel_html(f)
    assert "<svg" in html and "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html), "the HTML must need no external asset"
    assert "HYPERLINK(&quot;x&quot;)" in html  # data escaped, not markup


@pytest.mark.parametrize(("value", "cell"), [("=1+1", "'=1+1"), ("+44", "'+44"), ("-2", "'-2"), ("@SUM", "'@SUM"),
                                             ("\tx", "'\tx"), ("\rx", "'\rx"), ("MPS", "MPS"), ("", ""), (None, "")])
def test_csv_cells_never_start_a_formula(value: str | None, cell: str) -> None:
    assert safe_cell(value) == cell


def test_empty_store_funnel_is_zero_and_consistent(store) -> None:
    with store.session() as s:
        f = funnel(s, by="band")
    assert f.total.counts["identified"] == 0 and f.rows == [] and f.inconsistencies() == []
