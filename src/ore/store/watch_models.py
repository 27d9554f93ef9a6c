"""The re-offending watch's tables (issue 7): who is watched, what is flagged, what a screen raised.

- ``watch_subjects``: one row per convicted or cautioned person's case, kept in step with
  ``cases`` by ``ore.watch.subjects.sync`` before every screen and listing. It carries
  the references an offender manager needs without reading the case (their role has no
  ``cases.read``), the force alerts are routed to (the offender manager's, else the
  case's) and whether the person is still watched: a sealed, eliminated or erased
  person is taken off the watch and their row is hidden like a sealed case.
- ``watch_flags``: merchants and products whose purchases become new leads; from lead
  packages (``abuse`` products and the merchants that sold them) or added by an analyst.
  A flag removed by an analyst stays removed: the package sync never re-adds it.
- ``watch_feeds``: one row per screened feed, by the SHA-256 of its bytes: screening the
  same file again finds it here and adds nothing.
- ``watch_alerts`` and ``watch_alert_rows``: one alert per watched person per feed,
  with the feed rows that matched; a row (by its identity, not its line) alerts a person
  once, so overlapping feeds raise nothing twice.
- ``watch_leads``: the identities of feed rows written out as new leads (no personal
  data), so overlapping feeds write no lead twice.
- ``cport_assessments``: CPORT items recorded by an offender manager; the latest counts.

Card numbers appear only masked (first six, last four); no token or clear number is kept
here. Shares ``Base`` (and so the naming convention and metadata) with ``ore.store.models``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ore.store.models import Base, utcnow


class WatchSubject(Base):
    """A convicted or cautioned person's case as the watch sees it."""

    __tablename__ = "watch_subjects"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    person_ref: Mapped[str] = mapped_column(index=True)
    package_ref: Mapped[str]
    case_status: Mapped[str] = mapped_column(String(30))
    force_code: Mapped[str | None] = mapped_column(String(20))  # where alerts go: manager's, else case's force
    manager_force: Mapped[str | None] = mapped_column(String(20))
    manager: Mapped[str | None]
    on_watch: Mapped[bool] = mapped_column(default=True)
    off_reason: Mapped[str | None] = mapped_column(String(20))  # sealed | eliminated | erased | status
    sealed: Mapped[bool] = mapped_column(default=False)
    first_watched_at: Mapped[datetime] = mapped_column(default=utcnow)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchFlag(Base):
    """A flagged merchant or product: a purchase from it by anyone becomes a new lead."""

    __tablename__ = "watch_flags"
    __table_args__ = (UniqueConstraint("kind", "value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # merchant | product
    value: Mapped[str]  # normalised (ore.watch.normalise)
    shown: Mapped[str]  # as first seen or typed
    source: Mapped[str] = mapped_column(String(10))  # package | analyst
    package_ref: Mapped[str | None]
    reason: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str]
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_by: Mapped[str | None]
    removed_at: Mapped[datetime | None]
    removed_reason: Mapped[str | None] = mapped_column(Text)


class WatchFeed(Base):
    """A payment feed screened to the end (its alerts and leads committed with this row)."""

    __tablename__ = "watch_feeds"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str]
    format: Mapped[str] = mapped_column(String(10))  # csv | parquet
    card_input: Mapped[str] = mapped_column(String(10))  # number | token | none
    rows: Mapped[int]
    screened_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str]
    engine: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(Text)  # JSON counts: rows, problems, alerts, alert rows, leads


class WatchAlert(Base):
    """A watched person's purchases in one feed: routed by the subject's force, ranked by CPORT."""

    __tablename__ = "watch_alerts"
    __table_args__ = (UniqueConstraint("subject_id", "feed_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("watch_subjects.id"), index=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("watch_feeds.id"))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    matched: Mapped[str] = mapped_column(Text)  # JSON [{kind, shown}] of the identifiers that matched
    row_count: Mapped[int]
    flagged_rows: Mapped[int]  # of them, purchases from a flagged merchant or product
    first_time: Mapped[datetime | None]
    last_time: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="new")  # new | acknowledged
    acknowledged_by: Mapped[str | None]
    acknowledged_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class WatchAlertRow(Base):
    """One feed row behind an alert; ``row_key`` is the row's identity across feeds."""

    __tablename__ = "watch_alert_rows"
    __table_args__ = (UniqueConstraint("subject_id", "row_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("watch_alerts.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("watch_subjects.id"))
    row_key: Mapped[str] = mapped_column(String(64))
    line: Mapped[int]  # physical line of a CSV feed (header is 1), or row number of a Parquet feed
    transaction_time: Mapped[datetime | None]
    merchant: Mapped[str | None]
    product: Mapped[str | None]
    amount: Mapped[float | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    card_masked: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    email: Mapped[str | None]
    username: Mapped[str | None]
    ip_address: Mapped[str | None] = mapped_column(String(64))
    matched_on: Mapped[str] = mapped_column(String(40))  # card, email, username (comma-separated)
    flagged: Mapped[bool] = mapped_column(default=False)


class WatchLead(Base):
    """A feed row written out as a new lead, by identity only (the lead itself is in the package)."""

    __tablename__ = "watch_leads"
    id: Mapped[int] = mapped_column(primary_key=True)
    row_key: Mapped[str] = mapped_column(String(64), unique=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("watch_feeds.id"), index=True)
    line: Mapped[int]
    package_ref: Mapped[str]


class CportAssessment(Base):
    """CPORT items for a convicted person, as an offender manager recorded them; none is deleted.

    Each item is 1, 0, or NULL (not known). The score is never stored: it is summed from
    the items when read, so it cannot disagree with them (``ore.watch.cport``).
    """

    __tablename__ = "cport_assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("watch_subjects.id"), index=True)
    young_at_index: Mapped[int | None]
    prior_criminal_history: Mapped[int | None]
    contact_sexual_offending: Mapped[int | None]
    conditional_release_failure: Mapped[int | None]
    sexual_interest_in_children: Mapped[int | None]
    more_boy_content_images: Mapped[int | None]
    more_boy_content_other: Mapped[int | None]
    assessed_by: Mapped[str]
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
