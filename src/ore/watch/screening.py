"""``ore watch screen FEED``: a payment feed against the watchlists, into alerts and new leads.

The order of work, and why it is safe to interrupt anywhere:
1. The feed's SHA-256 is looked up: a feed screened before adds nothing (its first
   summary is returned).
2. The watch is brought in step with the case store (subjects and package flags), in its
   own transaction: bookkeeping, right whatever happens next.
3. The engine reads, checks and matches the feed (nothing is written anywhere).
4. Rows already behind an alert for that person, or already written as a lead, by
   their identity, are dropped: an overlapping feed raises nothing twice.
5. The lead package is written whole or not at all (``ore.watch.leads``), and
   ``problems.csv`` beside it.
6. The feed row, alerts, alert rows, lead identities and the audit entries are written
   in one transaction. A screen interrupted before this commit left no alert: run again,
   it does the same work and writes the same package. A second process screening the
   same feed meets the unique feed hash and adds nothing.

Who is alerted: a watched person (``ore.watch.watchlist``) whose card token, normalised
email or account name is on a feed row, whatever was bought. What becomes a lead: a
purchase from a flagged merchant or of a flagged product, by anyone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.auth.principal import Principal
from ore.errors import OreError
from ore.ingest.cards import mask_text
from ore.report.safecsv import csv_text
from ore.store import Store
from ore.store.watch_models import WatchAlert, WatchAlertRow, WatchFeed, WatchFlag, WatchLead
from ore.watch import access
from ore.watch.engine import connect, get_engine
from ore.watch.feed import open_feed
from ore.watch.leads import lead_row, package_id, write_package
from ore.watch.watchlist import build, sync_flags, sync_subjects
from ore.workspace import Workspace

SHOWN_CHARS = 200  # the case store's text columns; longer feed values are cut, with an ellipsis
CHUNK = 500


@dataclass
class ScreenSummary:
    feed: str
    sha256: str
    status: str  # screened | already screened
    out: str | None = None
    leads_package: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    alerts_by_force: dict[str, int] = field(default_factory=dict)
    watchlist: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _cut(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = mask_text(value)  # a card number typed into an email or merchant field is not kept in clear
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS - 1] + "…"


def _shown_card(row: dict[str, Any]) -> str:
    if row.get("card_masked"):
        return str(row["card_masked"])
    if row.get("card_last4"):
        return f"card ending {row['card_last4']}"
    return f"card token {str(row['card_token'])[:8]}…"


def _known_feed(store: Store, sha: str) -> WatchFeed | None:
    with store.session() as s:
        return s.scalar(select(WatchFeed).where(WatchFeed.sha256 == sha))


def _already(feed_row: WatchFeed, label: str) -> ScreenSummary:
    first = json.loads(feed_row.summary)
    return ScreenSummary(label, feed_row.sha256, "already screened", first.get("out"), first.get("leads_package"),
                         first.get("counts", {}), first.get("alerts_by_force", {}), first.get("watchlist", {}),
                         [f"screened before, at {feed_row.screened_at:%Y-%m-%d %H:%M} UTC by {feed_row.actor}: "
                          "nothing new"])


def _existing(session: Session, column: Any, keys: Iterable[Any], *where: Any) -> set[Any]:
    found: set[Any] = set()
    for part in _chunks(sorted(set(keys))):
        found |= set(session.scalars(select(column).where(column.in_(part), *where)))
    return found


def screen(store: Store, ws: Workspace, path: Path, *, out: Path | None = None, engine: str = "duckdb",
           principal: Principal | None = None, actor: str = "ore", operation: str = "Re-offending watch",
           purpose: str = "investigation", workers: int | None = None) -> ScreenSummary:
    """Screen the feed at ``path``; see the module's docstring for the order of work and what it decides."""
    started = time.perf_counter()
    if principal is not None:
        access.require(principal, "screen", "screen a payment feed")
        actor = principal.username
    matcher = get_engine(engine)
    feed = open_feed(Path(path))
    with ws.lock(f"watch screen {feed.label}"):
        if (done := _known_feed(store, feed.sha256)) is not None:
            _finish_summary(done)
            return _already(done, feed.label)
        out = Path(out) if out is not None else ws.root / "watch" / feed.sha256[:12]
        summary = ScreenSummary(feed.label, feed.sha256, "screened", str(out))
        con = connect(ws.tmp)
        try:
            with store.session() as s:  # the system's view: it must see sealed cases to take them off the watch
                synced = sync_subjects(s)
                new_flags = sync_flags(s, con)
            with store.session() as s:
                wl = build(s, con, ws.duckdb_path if ws.duckdb_path.exists() else None)
        finally:
            con.close()
        summary.watchlist = {**wl.counts(), "subjects_taken_off": synced.taken_off, "flags_added": new_flags}
        summary.notes.extend(wl.notes)
        if feed.ignored:
            summary.notes.append(f"columns not in the feed format were ignored: {', '.join(feed.ignored)}")
        keys, current = _card_keys(ws, feed.card_input, wl.cards.num_rows)
        m = matcher.screen(feed, wl, keys, current, ws.tmp, workers)
        summary.seconds = {k: round(v, 3) for k, v in m.seconds.items()}

        with store.session() as s:
            alerts, leads = _decide(s, m, wl)
        pkg = package_id(feed.sha256)
        flag_shown = _flag_labels(store, {fid for _, fid in m.flagged.values()})
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(f".{pkg}-*"):  # a package half-written by a killed run (clear card numbers)
            shutil.rmtree(stale, ignore_errors=True)
        if leads:
            rows = [lead_row(pkg, feed.label, m.rows[line], wl.categories.get(m.rows[line]["product_n"] or "",
                                                                                "unknown"),
                             flag_shown[m.flagged[line]], feed.card_input == "number") for line in leads]
            summary.leads_package = str(write_package(out, pkg, rows, operation=operation,
                                                      source=f"payment feed {feed.label} screened by ore watch"))
        text, _ = csv_text((feed.locator, "field", "problem"),
                           ((line, f, mask_text(msg)) for line, f, msg in m.problems))
        (out / "problems.csv").write_text(text, encoding="utf-8")
        summary.counts = {**m.counts, "alerts": len(alerts), "alert_rows": sum(len(v) for v in alerts.values()),
                          "leads": len(leads), "flagged_rows": len(m.flagged),
                          "watched_rows": len({h[0] for h in m.hits})}
        by_force: dict[str, int] = defaultdict(int)
        for sid in alerts:
            by_force[wl.subjects[sid].force_code or "unallocated"] += 1
        summary.alerts_by_force = dict(sorted(by_force.items()))
        summary.seconds["total"] = round(time.perf_counter() - started, 3)
        try:
            _commit(store, principal, purpose, actor, feed, engine, summary, m, alerts, leads, pkg, wl)
        except IntegrityError:
            if (done := _known_feed(store, feed.sha256)) is not None:  # another process screened it meanwhile
                return _already(done, feed.label)
            raise
        _write_summary(out, summary.as_dict())
        return summary


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    """``summary.json``, whole or not at all: written aside, then renamed into place."""
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out / "summary.json")


def _finish_summary(feed_row: WatchFeed) -> None:
    """A run killed after its commit wrote no ``summary.json``: the next run writes it from the stored one."""
    first = json.loads(feed_row.summary)
    out = Path(first["out"]) if first.get("out") else None
    if out is not None and out.is_dir() and not (out / "summary.json").exists():
        _write_summary(out, first)


def _card_keys(ws: Workspace, card_input: str, watched_tokens: int) -> tuple[dict[int, bytes], int]:
    """The workspace's card keys and the current version, for tokenising a raw feed.

    A new key is made only where nothing is watched by card yet: a key made now would not
    reproduce the tokens the case store holds, and every watched card would silently be missed.
    """
    if card_input != "number":
        return {}, 0
    if not ws.has_card_key() and watched_tokens:
        raise OreError(f"workspace {ws.root} holds no card key (keys/card-vN.key), but the watchlist's card tokens "
                       "were made under one: screen in the operation's workspace, or restore its key from the "
                       "operator's backup")
    current, _ = ws.card_key()
    return ws.card_keys(), current


def _decide(session: Session, m: Any, wl: Any) -> tuple[dict[int, list[tuple[int, str]]], list[int]]:
    """The alert rows per subject and the lead lines that are new: not behind an earlier alert or lead."""
    per_subject: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
    for line, sid, matched_on in m.hits:
        key = m.rows[line]["row_key"]
        per_subject[sid].setdefault(key, (line, matched_on))  # the same row twice in one feed: its first line
    alerts: dict[int, list[tuple[int, str]]] = {}
    for sid, rows in per_subject.items():
        seen = _existing(session, WatchAlertRow.row_key, rows, WatchAlertRow.subject_id == sid)
        fresh = [v for k, v in rows.items() if k not in seen]
        if fresh:
            alerts[sid] = sorted(fresh)
    flagged_keys: dict[str, int] = {}
    for line in sorted(m.flagged):
        flagged_keys.setdefault(m.rows[line]["row_key"], line)
    written = _existing(session, WatchLead.row_key, flagged_keys)
    return alerts, sorted(line for key, line in flagged_keys.items() if key not in written)


def _flag_labels(store: Store, ids: set[int]) -> dict[tuple[str, int], str]:
    with store.session() as s:
        found = {f.id: f for f in s.scalars(select(WatchFlag).where(WatchFlag.id.in_(ids or {0})))}
    return {(f.kind, f.id): f"{f.kind}: {f.shown} ({f.reason})" for f in found.values()}


def _commit(store: Store, principal: Principal | None, purpose: str, actor: str, feed: Any, engine: str,
            summary: ScreenSummary, m: Any, alerts: dict[int, list[tuple[int, str]]], leads: list[int], pkg: str,
            wl: Any) -> None:
    now = datetime.now(UTC)
    with store.session(principal) as s:
        s.info["purpose"] = s.info.get("purpose") or purpose
        feed_row = WatchFeed(sha256=feed.sha256, name=feed.label[:SHOWN_CHARS], format=feed.format,
                             card_input=feed.card_input, rows=summary.counts.get("rows_read", 0), screened_at=now,
                             actor=actor, engine=engine, summary=json.dumps(summary.as_dict(), default=str))
        s.add(feed_row)
        s.flush()
        for sid, rows in sorted(alerts.items()):
            shown = [m.rows[line] for line, _ in rows]
            matched: set[tuple[str, str]] = set()
            for (line, kinds), row in zip(rows, shown, strict=True):
                for kind in kinds.split(","):
                    matched.add((kind, _shown_card(row) if kind == "card" else _cut(row[kind])))
            times = [r["transaction_time"] for r in shown if r["transaction_time"] is not None]
            alert_id = s.execute(insert(WatchAlert).values(
                subject_id=sid, feed_id=feed_row.id, raised_at=now,
                matched=json.dumps([{"kind": k, "shown": v} for k, v in sorted(matched)], ensure_ascii=False),
                row_count=len(rows), flagged_rows=sum(line in m.flagged for line, _ in rows),
                first_time=min(times, default=None), last_time=max(times, default=None), status="new",
            ).returning(WatchAlert.id)).scalar_one()
            s.execute(insert(WatchAlertRow), [{
                "alert_id": alert_id, "subject_id": sid, "row_key": r["row_key"], "line": line,
                "transaction_time": r["transaction_time"], "merchant": _cut(r["merchant"]),
                "product": _cut(r["product"]), "amount": r["amount"],
                "currency": (r["currency"] or "")[:3] or None, "card_masked": r["card_masked"],
                "card_last4": r["card_last4"], "email": _cut(r["email"]), "username": _cut(r["username"]),
                "ip_address": _cut(r["ip_address"]), "matched_on": kinds, "flagged": line in m.flagged,
            } for (line, kinds), r in zip(rows, shown, strict=True)])
        if leads:
            s.execute(insert(WatchLead), [{"row_key": m.rows[line]["row_key"], "feed_id": feed_row.id, "line": line,
                                           "package_ref": pkg} for line in leads])
        refs = sorted(wl.subjects[sid].person_ref for sid in alerts)
        detail = {"feed": feed.label, "sha256": feed.sha256, "counts": summary.counts, "engine": engine,
                  "leads_package": pkg if leads else None}
        # matching the feed against convicted persons' identifiers is a combination; keeping the
        # matched rows with their alerts is a collection
        record_for(s, action="watch.screen", category="combination", objects=refs, default_purpose=purpose,
                   detail=detail, user=actor)
        if alerts:
            record_for(s, action="watch.screen", category="collection", objects=refs, default_purpose=purpose,
                       detail={"feed": feed.label, "alert_rows": summary.counts["alert_rows"]}, user=actor)


def feeds_screened(store: Store) -> list[WatchFeed]:
    with store.session() as s:
        return list(s.scalars(select(WatchFeed).order_by(WatchFeed.screened_at)))


__all__ = ["ScreenSummary", "feeds_screened", "screen"]
