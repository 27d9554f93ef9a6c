"""Listing alerts for offender managers: scoped to their force, ranked by CPORT, each view logged.

An alert is one watched person's purchases in one feed. It is shown with the person's
references, the force it is routed to, the identifiers that matched, the feed rows and
the person's latest CPORT score with what the published figures say about it.

Order (``rank``): CPORT score, higher first (``ore.watch.cport.Score.rank_key``); persons
without a score after all scored ones, each marked "not assessed" or "not scorable";
then more purchases from flagged merchants first; then the newest. The order is
advice: every alert is listed.

Before listing, the watch is brought in step with the cases (``sync_subjects``), so an
alert of a person sealed since it was raised is no longer shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.auth.principal import is_system
from ore.auth.scope import principal_of
from ore.errors import OreError
from ore.store import Store
from ore.store.watch_models import WatchAlert, WatchAlertRow, WatchFeed, WatchSubject
from ore.watch import access, cport
from ore.watch.offenders import items_of, latest_cport
from ore.watch.watchlist import sync_subjects


@dataclass
class AlertView:
    alert: WatchAlert
    subject: WatchSubject
    feed: WatchFeed
    score: cport.Score | None  # None: no CPORT recorded
    rows: list[WatchAlertRow] = field(default_factory=list)

    @property
    def matched(self) -> list[dict[str, str]]:
        return json.loads(self.alert.matched)

    @property
    def cport_shown(self) -> str:
        return "not assessed" if self.score is None else self.score.shown()

    @property
    def cport_context(self) -> list[str]:
        return [] if self.score is None else cport.published_context(self.score)

    def rank_key(self) -> tuple[Any, ...]:
        s = self.score.rank_key() if self.score is not None else (0, 0, 0)
        last = self.alert.last_time or self.alert.raised_at
        return (s, self.alert.flagged_rows, last, self.alert.id)

    def as_dict(self) -> dict[str, Any]:
        a, s = self.alert, self.subject
        return {
            "alert": a.id, "case": s.case_id, "person": s.person_ref, "package": s.package_ref, "force": s.force_code,
            "case_status": s.case_status, "status": a.status, "feed": self.feed.name, "raised_at": a.raised_at,
            "matched": self.matched, "rows": a.row_count, "flagged_rows": a.flagged_rows,
            "first_time": a.first_time, "last_time": a.last_time, "cport": self.cport_shown,
            "cport_context": self.cport_context,
            "feed_rows": [{c: getattr(r, c) for c in ("line", "transaction_time", "merchant", "product", "amount",
                                                       "currency", "card_masked", "card_last4", "email", "username",
                                                       "ip_address", "matched_on", "flagged")} for r in self.rows],
        }


def refresh(store: Store) -> None:
    """Take sealed, eliminated and erased persons off the watch before anyone reads it (system session)."""
    with store.session() as s:
        sync_subjects(s)


def list_alerts(session: Session, *, force: str | None = None, status: str | None = None, with_rows: bool = False,
                limit: int | None = None) -> list[AlertView]:
    """The alerts the session's user may see, ranked (see the module docstring); a consultation."""
    who = principal_of(session)
    access.require(who, "alerts", "list watch alerts")
    q = (select(WatchAlert, WatchSubject, WatchFeed)
         .join(WatchSubject, WatchSubject.id == WatchAlert.subject_id)
         .join(WatchFeed, WatchFeed.id == WatchAlert.feed_id)
         .where(access.visible_subjects(who)))
    if force:
        q = q.where(WatchSubject.force_code == force)
    if status:
        q = q.where(WatchAlert.status == status)
    found = [(a, s, f) for a, s, f in session.execute(q)]
    scores = latest_cport(session, sorted({s.id for _, s, _ in found}))
    views = [AlertView(a, s, f, cport.score(items_of(scores[s.id])) if s.id in scores else None)
             for a, s, f in found]
    views.sort(key=lambda v: v.rank_key(), reverse=True)
    if limit:
        views = views[:limit]
    if with_rows and views:
        by_alert: dict[int, list[WatchAlertRow]] = {}
        ids = [v.alert.id for v in views]
        for i in range(0, len(ids), 500):
            for r in session.scalars(select(WatchAlertRow).where(WatchAlertRow.alert_id.in_(ids[i:i + 500]))
                                     .order_by(WatchAlertRow.line)):
                by_alert.setdefault(r.alert_id, []).append(r)
        for v in views:
            v.rows = by_alert.get(v.alert.id, [])
    if not is_system(who) and views:
        record_for(session, action="watch.alerts", category="consultation",
                   objects=sorted({v.subject.person_ref for v in views}), default_purpose="investigation",
                   detail={"alerts": [v.alert.id for v in views], "rows_shown": with_rows,
                           **({"force": force} if force else {})})
    return views


def acknowledge(session: Session, alert_id: int, *, note: str | None = None, at: datetime | None = None) -> WatchAlert:
    """Mark an alert seen by the offender manager (who, when, and a note); an alteration."""
    who = principal_of(session)
    access.require(who, "alerts", "acknowledge a watch alert")
    row = session.execute(select(WatchAlert, WatchSubject).join(WatchSubject, WatchSubject.id == WatchAlert.subject_id)
                          .where(WatchAlert.id == alert_id, access.visible_subjects(who))).first()
    if row is None:
        raise OreError(f"no watch alert {alert_id} (ore watch alerts lists those you may see)")
    alert, subject = row
    if alert.status == "acknowledged":
        raise OreError(f"alert {alert_id} was acknowledged by {alert.acknowledged_by} already")
    alert.status, alert.acknowledged_by = "acknowledged", who.username
    alert.acknowledged_at, alert.note = at or datetime.now(UTC), (note or "").strip() or None
    session.flush()
    record_for(session, action="watch.acknowledge", category="alteration", objects=[subject.person_ref],
               default_purpose="investigation", detail={"alert": alert_id, "note": alert.note})
    return alert
