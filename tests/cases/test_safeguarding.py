"""Children identified and safeguarded are recorded against a case as counts, and reach the funnel."""

from __future__ import annotations

from datetime import date

import pytest
from casekit import T0, add_people
from sqlalchemy import inspect

from ore.cases import funnel, record_safeguarding, seal
from ore.cases.safeguarding import safeguarding_totals
from ore.errors import OreError
from ore.store.models import Case, Safeguarding


def test_safeguarding_is_recorded_and_counted(store) -> None:
    a, b = add_people(store, 2)
    with store.session() as s:
        record_safeguarding(s, s.get(Case, a), identified=3, safeguarded=2, agency="Leeds City Council",
                            by="dc.patel", identified_on=date(2003, 6, 1), safeguarded_on=date(2003, 6, 3))
        record_safeguarding(s, s.get(Case, a), identified=1, safeguarded=1, agency="NSPCC", by="dc.patel")
        record_safeguarding(s, s.get(Case, b), identified=4, safeguarded=4, agency="Leeds City Council", by="dc.o")
    with store.session() as s:
        t = safeguarding_totals(s, s.get(Case, a))
        assert (t.records, t.children_identified, t.children_safeguarded) == (2, 4, 3)
        f = funnel(s)
        assert (f.total.counts["children_identified"], f.total.counts["children_safeguarded"]) == (8, 7)
        assert f.inconsistencies() == []


def test_no_column_holds_a_childs_name() -> None:
    cols = {c.name for c in inspect(Safeguarding).columns}
    assert not any("name" in c for c in cols)


@pytest.mark.parametrize(("kw", "message"), [
    ({"identified": 1, "safeguarded": 2}, "only 1 identified"),
    ({"identified": -1, "safeguarded": 0}, "cannot be negative"),
    ({"identified": 0, "safeguarded": 0}, "at least one child"),
    ({"identified": 1, "safeguarded": 1, "agency": " "}, "name the agency"),
    ({"identified": 1, "safeguarded": 1, "identified_on": date(2003, 6, 2), "safeguarded_on": date(2003, 6, 1)},
     "before they were identified"),
])
def test_impossible_records_are_refused(store, kw: dict, message: str) -> None:
    (cid,) = add_people(store, 1)
    kw = {"agency": "LA", **kw}
    with pytest.raises(OreError, match=message), store.session() as s:
        record_safeguarding(s, s.get(Case, cid), by="dc", **kw)


def test_a_sealed_case_takes_no_safeguarding_record(store) -> None:
    (cid,) = add_people(store, 1)
    with store.session() as s:
        seal(s, s.get(Case, cid), by="auditor", reason="r", at=T0)
    with pytest.raises(OreError, match="sealed"), store.session() as s:
        record_safeguarding(s, s.get(Case, cid), identified=1, safeguarded=1, agency="LA", by="dc")
