"""The watch end to end: a synthetic operation with convictions, then a later payment feed.

Exactly the right alerts (convicted and cautioned persons whose cards, emails or account
names come back), nothing for sealed or eliminated persons, every purchase from a
flagged merchant as a new lead that names no case; screening twice adds nothing; an
overlapping feed adds only what is new; pre-tokenised, raw and Parquet feeds agree.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from casekit import Triaged, as_user, card_numbers
from sqlalchemy import func, select
from watchkit import FEED_HEADER, FLAGGED_MERCHANT, alerts_seen, counts, later_feed, lead_rows, setup

from ore.auth.scope import principal_of
from ore.cases import find_case, seal
from ore.errors import OreError
from ore.ingest import ingest
from ore.ingest.cards import Tokeniser
from ore.store.access import AuditEntry
from ore.store.watch_models import WatchAlertRow
from ore.watch import list_alerts, list_watched, screen
from ore.workspace import Workspace


def test_later_feed_gives_exactly_the_right_alerts_and_leads(store, triaged: Triaged, tmp_path: Path) -> None:
    op, exp, feed = setup(store, triaged, tmp_path)
    summary = screen(store, triaged.ws, feed, out=tmp_path / "out")

    assert alerts_seen(store) == exp.alerts
    assert set(exp.alerts) == {p.ref for p in op.convicted + op.cautioned}
    assert summary.watchlist["subjects"] == len(op.convicted) + len(op.cautioned)  # never the sealed
    with store.session() as s:
        assert {w.subject.person_ref for w in list_watched(s)} == set(exp.alerts)
        ever = {w.subject.person_ref for w in list_watched(s, include_off=True)}
        views = list_alerts(s, with_rows=True)
        for v in views:  # routed to the force the case was disseminated to (no offender manager recorded yet)
            assert v.subject.force_code == find_case(s, v.subject.person_ref).force_code
            assert v.alert.row_count == len(v.rows) and v.cport_shown == "not assessed"
        matched = {v.subject.person_ref: {m["kind"] for m in v.matched} for v in views}
        sealed_rows = s.scalar(select(func.count()).select_from(WatchAlertRow)
                               .where(WatchAlertRow.line.in_(exp.sealed_lines)))
        audit = [json.loads(e.objects)
                 for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "watch.screen"))]
    assert sealed_rows == 0
    assert ever == set(exp.alerts)  # sealed before the first screen: never on the watch at all
    assert matched[op.convicted[0].ref] == {"card", "email"} and matched[op.convicted[1].ref] == {"card"}
    assert matched[op.cautioned[0].ref] == {"username"}
    hidden = {p.ref for p in op.sealed + op.eliminated}
    assert audit and all(not hidden & set(objs) for objs in audit)

    leads = lead_rows(summary)
    assert {int(r["feed_line"]) for r in leads} == exp.leads
    assert all(r["card_number"] and r["record_id"].startswith("WATCH-") for r in leads)
    every_ref = {p.ref for p in op.convicted + op.cautioned + op.sealed + op.eliminated}
    text = (Path(summary.leads_package) / "leads.csv").read_text(encoding="utf-8")
    assert not any(ref in text for ref in every_ref)  # a lead names no case, sealed or not
    assert {r["product_category"] for r in leads if r["product"] == "ADULT-AV-PASS"} == {"adult"}
    assert {r["product_category"] for r in leads if r["product"] == "CHILD-SITE-01"} == {"abuse"}

    problems = list(csv.DictReader((tmp_path / "out" / "problems.csv").open(encoding="utf-8")))
    (bad,) = exp.bad_lines
    assert {(int(p["line"]), p["field"]) for p in problems} == {
        (bad, "transaction_time"), (bad, "amount"), (bad, "card_number"), (bad, "ip_address")}
    assert "4111111111111112" not in (tmp_path / "out" / "problems.csv").read_text(encoding="utf-8")
    c = summary.counts
    assert (c["alerts"], c["leads"], c["problems"]) == (len(exp.alerts), len(exp.leads), 4)
    assert c["rows_read"] == c["rows_screened"] == bad - 1


def test_screening_the_same_feed_twice_adds_nothing(store, triaged: Triaged, tmp_path: Path) -> None:
    _, exp, feed = setup(store, triaged, tmp_path)
    first = screen(store, triaged.ws, feed, out=tmp_path / "out")
    before, package = counts(store), (Path(first.leads_package) / "leads.csv").read_bytes()
    again = screen(store, triaged.ws, feed, out=tmp_path / "out")
    assert again.status == "already screened" and again.counts == first.counts
    assert counts(store) == before and before[0] == 1
    assert (Path(first.leads_package) / "leads.csv").read_bytes() == package
    assert alerts_seen(store) == exp.alerts


def test_an_overlapping_feed_raises_only_what_is_new(store, triaged: Triaged, tmp_path: Path) -> None:
    op, exp, feed = setup(store, triaged, tmp_path)
    screen(store, triaged.ws, feed, out=tmp_path / "out1")
    person = op.convicted[1]
    extra = [{"transaction_time": "2005-12-01T08:00:00", "merchant": FLAGGED_MERCHANT, "product": "CHILD-SITE-04",
              "amount": "29.95", "currency": "USD", "card_number": sorted(person.cards)[0], "email": "",
              "username": "", "ip_address": "81.2.69.200"}]
    feed2 = tmp_path / "feed2.csv"
    exp2 = later_feed(feed2, op, known_cards=card_numbers(triaged.scenario), extra=extra)  # the same rows, and one
    assert exp2.alerts == exp.alerts and feed2.read_bytes() != feed.read_bytes()
    second = screen(store, triaged.ws, feed2, out=tmp_path / "out2")
    new_line = len(feed2.read_text(encoding="utf-8").splitlines())
    assert (second.counts["alerts"], second.counts["alert_rows"], second.counts["leads"]) == (1, 1, 1)
    assert [int(r["feed_line"]) for r in lead_rows(second)] == [new_line]
    with store.session() as s:
        (v,) = [v for v in list_alerts(s, with_rows=True) if v.feed.name == "feed2.csv"]
    assert v.subject.person_ref == person.ref and [(r.line, r.matched_on, r.flagged) for r in v.rows] == [
        (new_line, "card", True)]


def _tokenised(src: Path, dest: Path, key: bytes, version: int) -> None:
    tok = Tokeniser(key, version)
    with src.open(newline="", encoding="utf-8") as f, dest.open("w", newline="", encoding="utf-8") as g:
        header = [h for h in FEED_HEADER if h != "card_number"] + ["card_token", "card_last4"]
        w = csv.DictWriter(g, fieldnames=header)
        w.writeheader()
        for row in csv.DictReader(f):
            card = row.pop("card_number")
            valid = card.isdigit() and card != "4111111111111112"
            row["card_token"] = tok.token(card) if valid else "not-a-token"
            row["card_last4"] = card[-4:]
            w.writerow(row)


def test_a_pre_tokenised_feed_gives_the_same_alerts_and_leads(store, triaged: Triaged, tmp_path: Path) -> None:
    _, exp, feed = setup(store, triaged, tmp_path)
    version, key = triaged.ws.card_key()
    tokenised = tmp_path / "tokens.csv"
    _tokenised(feed, tokenised, key, version)
    summary = screen(store, triaged.ws, tokenised, out=tmp_path / "out")
    assert alerts_seen(store) == exp.alerts
    leads = lead_rows(summary)
    assert {int(r["feed_line"]) for r in leads} == exp.leads
    assert all(not r["card_number"] and len(r["card_token"]) == 64 for r in leads)
    with store.session() as s:
        shown = {m["shown"] for v in list_alerts(s) for m in v.matched if m["kind"] == "card"}
    assert shown and all(x.startswith("card ending ") for x in shown)


def test_a_parquet_feed_gives_the_same_alerts_by_row_number(store, triaged: Triaged, tmp_path: Path) -> None:
    _, exp, feed = setup(store, triaged, tmp_path)
    with feed.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = pa.table({h: pa.array([r[h] or None for r in rows], pa.string()) for h in FEED_HEADER})
    pq.write_table(table, tmp_path / "feed.parquet")
    summary = screen(store, triaged.ws, tmp_path / "feed.parquet", out=tmp_path / "out")
    assert alerts_seen(store) == {ref: {(line - 1, on) for line, on in rows_} for ref, rows_ in exp.alerts.items()}
    assert {int(r["feed_line"]) for r in lead_rows(summary)} == {line - 1 for line in exp.leads}


def test_the_new_leads_are_a_package_triage_ingests(store, triaged: Triaged, tmp_path: Path) -> None:
    _, exp, feed = setup(store, triaged, tmp_path)
    summary = screen(store, triaged.ws, feed, out=tmp_path / "out")
    report = ingest(Workspace.open(tmp_path / "fresh-ws"), Path(summary.leads_package))
    (leads,) = [f for f in report.files if f.file == "leads.csv"]
    assert (leads.accepted, leads.quarantined) == (len(exp.leads), 0)


def test_a_person_sealed_after_an_alert_leaves_the_list(store, triaged: Triaged, tmp_path: Path) -> None:
    op, exp, feed = setup(store, triaged, tmp_path)
    screen(store, triaged.ws, feed, out=tmp_path / "out")
    gone = op.convicted[0].ref
    with store.session() as s:
        seal(s, find_case(s, gone), by="sgt.jones", reason="conviction quashed: identity misused")
    analyst, auditor = as_user("analyst", None), as_user("auditor", None)
    assert alerts_seen(store, analyst) == {k: v for k, v in exp.alerts.items() if k != gone}
    assert alerts_seen(store, auditor) == exp.alerts  # the record stays for those who may see sealed persons
    with store.session(analyst) as s:
        assert principal_of(s).username == analyst.username


def test_a_workspace_without_the_card_key_refuses_a_raw_feed(store, triaged: Triaged, tmp_path: Path) -> None:
    """A key made on the spot would match none of the tokens the case store holds: say so, do not miss them."""
    _, _, feed = setup(store, triaged, tmp_path)
    elsewhere = Workspace.open(tmp_path / "another-ws")
    with pytest.raises(OreError, match="holds no card key"):
        screen(store, elsewhere, feed, out=tmp_path / "out")
    assert not elsewhere.has_card_key()


def test_erasing_a_person_erases_their_alerts_and_keeps_them_off_the_watch(store, triaged: Triaged,
                                                                            tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ore.cases.retention import purge
    from ore.store.watch_models import WatchAlert, WatchSubject

    op, exp, feed = setup(store, triaged, tmp_path)
    screen(store, triaged.ws, feed, out=tmp_path / "out")
    gone = op.convicted[0].ref
    with store.session() as s:
        subject = s.scalar(select(WatchSubject.id).where(WatchSubject.person_ref == gone))
        assert s.scalar(select(func.count()).select_from(WatchAlertRow).where(WatchAlertRow.subject_id == subject))
        counts_erased = purge(s, find_case(s, gone), reason="retention period over", now=datetime(2300, 1, 1, tzinfo=UTC))
    assert counts_erased["watch_alerts"] == 1 and counts_erased["watch_alert_rows"] >= 1
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(WatchAlert).where(WatchAlert.subject_id == subject)) == 0
        assert s.scalar(select(func.count()).select_from(WatchAlertRow).where(WatchAlertRow.subject_id == subject)) == 0
    screen(store, triaged.ws, feed, out=tmp_path / "out2")  # the same feed again: the erased are not watched
    assert gone not in alerts_seen(store, as_user("auditor", None))
