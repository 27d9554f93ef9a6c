"""The case store's tables: what ore keeps about people once a triage is committed.

Triage tables (DuckDB) are rebuilt on every run; the case store is where work and
history accumulate, so nothing in it is overwritten without a trace:

- ``persons``, ``records``, ``holding_links`` mirror the latest triage of a package;
  a re-triage updates them in place and writes each changed value to ``changes``.
- ``recommendations`` keeps every band ore has recommended for a person, with its
  reasons; a new row only when the band or reasons changed.
- ``cases`` is one row per person per operation: the lifecycle status, the
  supervisor's band, the s.38 category, a timestamp per milestone (the funnel is
  counted from these) and a version counter, so two investigators updating one case
  cannot silently overwrite each other (optimistic locking).
- ``transitions`` is the append-only history of each case: who, when (UTC), why.
- ``safeguarding`` counts children identified and safeguarded, never their names.

Card numbers appear only masked (first six, last four) and as the keyed token.
Times are stored as naive UTC and read back as aware UTC on every backend.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time: stored as naive UTC, returned as aware UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), date: Date(), str: String(200), float: Float()}


class Operation(Base):
    """An operation (e.g. Ore): packages from one source, worked as one set of cases."""

    __tablename__ = "operations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Package(Base):
    """A lead package as triaged (``packages.package_id`` in DuckDB)."""

    __tablename__ = "packages"
    id: Mapped[int] = mapped_column(primary_key=True)
    package_ref: Mapped[str] = mapped_column(unique=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    source: Mapped[str | None]
    received: Mapped[date | None]
    first_imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    operation: Mapped[Operation] = relationship()


class Import(Base):
    """One import of a triage run that changed something (a re-import of the same run writes none)."""

    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"), index=True)
    outdir: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[str] = mapped_column(Text)  # JSON counts: added, updated, withdrawn ...


class Person(Base):
    """A person (identity a record names) or an unidentified subject, as of the latest triage."""

    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("package_id", "person_ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    person_ref: Mapped[str] = mapped_column(index=True)  # the triage's person_id / subject_id
    kind: Mapped[str] = mapped_column(String(20))  # identified | unidentified
    display_name: Mapped[str | None]
    date_of_birth: Mapped[date | None]
    postcode: Mapped[str | None] = mapped_column(String(20))
    force_code: Mapped[str | None] = mapped_column(String(20))  # allocated by triage
    force_name: Mapped[str | None]
    evidence_grade: Mapped[str | None] = mapped_column(String(1))
    likely_victim: Mapped[bool] = mapped_column(default=False)
    grade_reasons: Mapped[str | None] = mapped_column(Text)
    identifiers: Mapped[str | None] = mapped_column(Text)
    record_count: Mapped[int] = mapped_column(default=0)
    withdrawn_at: Mapped[datetime | None]  # set when a later triage no longer names this person
    erased_at: Mapped[datetime | None]  # set when retention purged the personal data (issue 5)
    package: Mapped[Package] = relationship()
    case: Mapped[Case] = relationship(back_populates="person", uselist=False)


class Recommendation(Base):
    """A band ore recommended for a person, with its reasons; the latest is current, none is deleted."""

    __tablename__ = "recommendations"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    band: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[str] = mapped_column(Text)  # ;-separated codes
    sentences: Mapped[str] = mapped_column(Text)  # JSON list of sentences
    evidence_grade: Mapped[str | None] = mapped_column(String(1))
    likely_victim: Mapped[bool] = mapped_column(default=False)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Record(Base):
    """A payment record: an allegation about a card. Card masked and tokenised, never clear."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("package_id", "record_ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    record_ref: Mapped[str]
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    transaction_time: Mapped[datetime | None]
    merchant: Mapped[str | None]
    product: Mapped[str | None]
    product_category: Mapped[str | None] = mapped_column(String(20))
    amount: Mapped[float | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str | None] = mapped_column(String(20))
    card_masked: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_token: Mapped[str | None] = mapped_column(String(64), index=True)
    card_key_version: Mapped[int | None]
    fraud_score: Mapped[float | None]
    fraud_suspected: Mapped[bool] = mapped_column(default=False)
    indicators: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{code, weight, sentence}]
    withdrawn_at: Mapped[datetime | None]


class HoldingLink(Base):
    """A link from a person to a holding (register, convictions, ...) with its match probability."""

    __tablename__ = "holding_links"
    __table_args__ = (UniqueConstraint("person_id", "holding", "ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    holding: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str]
    match_probability: Mapped[float]
    match_weight: Mapped[float | None]
    detail: Mapped[str | None] = mapped_column(Text)
    withdrawn_at: Mapped[datetime | None]


class Change(Base):
    """One value a re-triage changed: the history behind ``persons``, ``records`` and links."""

    __tablename__ = "changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    record_ref: Mapped[str | None]
    field: Mapped[str] = mapped_column(String(60))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """One person's case in an operation: where it stands, and when it reached each milestone."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_operation_status", "operation_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    status: Mapped[str] = mapped_column(String(30), default="identified")
    s38_category: Mapped[str] = mapped_column(String(20), default="suspect")
    recommended_band: Mapped[str | None] = mapped_column(String(8))
    band: Mapped[str | None] = mapped_column(String(8))  # the band a supervisor confirmed or set
    band_confirmed: Mapped[bool] = mapped_column(default=False)
    force_code: Mapped[str | None] = mapped_column(String(20))  # the force it was disseminated to
    sealed: Mapped[bool] = mapped_column(default=False)
    elimination_ground: Mapped[str | None] = mapped_column(String(40))
    event_count: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    triaged_at: Mapped[datetime | None]
    disseminated_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    investigation_at: Mapped[datetime | None]
    first_action_at: Mapped[datetime | None]
    arrested_at: Mapped[datetime | None]
    interviewed_at: Mapped[datetime | None]
    charged_at: Mapped[datetime | None]
    cautioned_at: Mapped[datetime | None]
    nfa_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    convicted_at: Mapped[datetime | None]
    acquitted_at: Mapped[datetime | None]
    eliminated_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(nullable=False, default=1)
    person: Mapped[Person] = relationship(back_populates="case")
    operation: Mapped[Operation] = relationship()

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


class Transition(Base):
    """One recorded step of a case: append-only; ``seq`` numbers a case's steps without gaps."""

    __tablename__ = "transitions"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))  # transition | seal | unseal
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str]  # the signed-in user's name (ore.auth), or an internal caller's
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    band: Mapped[str | None] = mapped_column(String(8))
    force_code: Mapped[str | None] = mapped_column(String(20))
    override_by: Mapped[str | None]
    override_reason: Mapped[str | None] = mapped_column(Text)
    overridden_rule: Mapped[str | None] = mapped_column(String(60))
    category_before: Mapped[str | None] = mapped_column(String(20))
    category_after: Mapped[str | None] = mapped_column(String(20))


class Safeguarding(Base):
    """Children identified and safeguarded in a case: counts, dates and agency; no names."""

    __tablename__ = "safeguarding"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    children_identified: Mapped[int]
    children_safeguarded: Mapped[int]
    agency: Mapped[str]
    identified_on: Mapped[date | None]
    safeguarded_on: Mapped[date | None]
    recorded_by: Mapped[str]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
