"""Opening the case store: the engine, its connection settings, and migrations on first use.

SQLite (the default, a file in the workspace) is opened in WAL mode with
``synchronous=FULL`` on every connection: a committed case decision survives a
power cut. Foreign keys are switched on, which SQLite otherwise ignores. PostgreSQL
(``ORE_DATABASE_URL``) is reached through psycopg 3; a ``postgresql://`` URL is read
as ``postgresql+psycopg://``.

Concurrency. Several processes share one store: the web app, CLI commands, on
PostgreSQL several workspaces. On SQLite every session's transaction starts with
``BEGIN IMMEDIATE``: it takes the database's one write lock before its first read,
waiting for it up to the busy timeout (sessions nearly all write: a view of a person is
an audit entry). A deferred transaction that read first and then wrote
after another process committed would fail at once with "database is locked" (its
snapshot is stale, and waiting cannot help), which is what a user of the web app saw
while the CLI wrote. A lock still held past the busy timeout, or a deadlock or
serialisation failure on PostgreSQL, reaches the user as ``StoreBusy``: nothing was
saved, try again. Writers that decide from what they read across many rows (an import)
take ``Store.serialise`` first, so two of them never interleave.

The schema is Alembic's, shipped in ``ore/store/migrations``; ``open_store`` brings
any database to the newest revision before use, so there is no separate setup step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from ore.errors import OreError


class CaseConflict(OreError):
    """Someone else changed the case between this session's read and its write."""


class StoreBusy(OreError):
    """The case store stayed locked by another writer too long (or PostgreSQL broke a deadlock): try again."""


BUSY_TIMEOUT = 30.0  # seconds a SQLite transaction waits for another process's write lock
# PostgreSQL's SQLSTATEs for a transaction it aborted to break a deadlock or a serialisation conflict,
# and for a lock not granted in lock_timeout: nothing was written, and the same work again may succeed.
_PG_RETRYABLE = {"40P01", "40001", "55P03"}


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names by default."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _sqlite_connect(busy_timeout: float) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not open transactions itself (it would BEGIN deferred, before a write only):
        # ore's "begin" listener (_begin) opens each one.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        finally:
            cur.close()

    return on_connect


WRITE_LOCK = "ore_write_lock"  # execution option: this connection's transactions begin IMMEDIATE


def _begin(conn: Any) -> None:
    """Open the transaction: a session's takes SQLite's write lock at once (waiting up to the busy timeout).

    Plain engine connections (the schema check; test helpers) begin deferred, so that a
    caller holding several at once does not wait for itself.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_LOCK) else "BEGIN")


def make_engine(url: str, *, busy_timeout: float = BUSY_TIMEOUT) -> Engine:
    """An engine for ``url``; on SQLite every transaction waits up to ``busy_timeout`` s for the write lock."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_connect(busy_timeout))
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def busy_error(e: BaseException) -> bool:
    """Whether ``e`` is the database refusing for now (locked, deadlock, serialisation), not for good."""
    if not isinstance(e, DBAPIError):
        return False
    code = getattr(e.orig, "sqlstate", None)
    if code in _PG_RETRYABLE:
        return True
    message = str(e.orig).lower()
    return isinstance(e, OperationalError) and ("database is locked" in message or "database is busy" in message)


def busy_message(e: BaseException) -> str:
    """What a user reads for a ``busy_error``: nothing saved, and trying again is the remedy."""
    code = getattr(getattr(e, "orig", None), "sqlstate", None)
    if code in _PG_RETRYABLE:
        what = "the case store stopped this change to let a concurrent one finish"
    else:
        what = "another ore process kept the case store locked for longer than the busy timeout (ORE_BUSY_TIMEOUT)"
    return f"the case store is busy: {what}; nothing of yours was saved. Try again in a moment."


def _alembic_config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ore.store").joinpath("migrations")))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    cfg = _alembic_config(None)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (creating it from empty on first use)."""
    if current_revision(engine) == head_revision():
        return
    # SQLite: the write lock from the start, as a session's (a deferred migration that read the schema's
    # revision, then wrote after another process had committed, would fail at once)
    with engine.execution_options(**{WRITE_LOCK: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            # two processes opening a fresh database at once: the second waits, then finds it done
            conn.execute(text("SELECT pg_advisory_xact_lock(7272001)"))
        command.upgrade(_alembic_config(conn), "head")


@dataclass
class Store:
    """The case store: an engine at the newest schema and a way to open sessions on it."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, principal: Any = None) -> Iterator[Session]:
        """A unit of work acting for ``principal``: committed when the block ends, rolled back on any error.

        The principal (``ore.auth.Principal``; internal callers give none and act as the
        system) is kept in ``session.info`` for the scoping of every case query. On
        PostgreSQL each transaction also switches to the application role ``ore_app``
        (not the tables' owner, so row-level security applies) with the principal's
        ``ore.force`` and ``ore.sealed`` settings, local to the transaction.
        A lost optimistic-lock race surfaces as ``CaseConflict``, one clear message.
        """
        from ore.auth.principal import SYSTEM

        session = self.sessions()
        session.info["principal"] = principal or SYSTEM
        if self.dialect == "postgresql":
            event.listen(session, "after_begin", _enter_app_role)
        try:
            yield session
            session.commit()
        except StaleDataError as e:
            session.rollback()
            raise CaseConflict(
                "the case was changed by someone else after you read it; nothing of yours was saved. "
                "Show the case again and repeat your update if it still applies."
            ) from e
        except DBAPIError as e:
            session.rollback()
            if busy_error(e):
                raise StoreBusy(busy_message(e)) from e
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def serialise(self, session: Session, name: str) -> None:
        """``serialise(session, name)``: hold the lock ``name`` until the transaction ends."""
        serialise(session, name)

    def dispose(self) -> None:
        self.engine.dispose()


APP_ROLE = "ore_app"
# The lock of work that reads a package's persons and writes what it found (or did not find): an
# import, which inserts what is missing and updates what changed, and an erasure, which deletes a
# person's records. Interleaved, an import that read the persons before an erasure would insert the
# erased person's records again after it.
PERSONS_LOCK = "ore.persons"


def serialise(session: Session, name: str) -> None:
    """Hold the lock ``name`` until ``session``'s transaction ends: transactions taking it run one at a time.

    For work that reads many rows and writes from what it read (an import creating the
    operation, package, persons and cases it did not find): two such transactions at once
    would both insert, and the second would fail on a unique key, or one would undo the
    other. On PostgreSQL this is a transaction-level advisory lock; on SQLite every
    session's transaction already holds the one write lock (``BEGIN IMMEDIATE``).
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _enter_app_role(session: Session, _transaction: Any, connection: Any) -> None:
    """At each transaction's start: act as ``ore_app`` with the principal's row-level-security settings."""
    from ore.auth.scope import session_settings

    settings = session_settings(session.info["principal"])
    connection.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
    connection.execute(text("SELECT " + ", ".join(f"set_config('{k}', :v{i}, true)" for i, k in enumerate(settings))),
                       {f"v{i}": v for i, v in enumerate(settings.values())})


def open_store(url: str, *, upgrade: bool = True, busy_timeout: float = BUSY_TIMEOUT) -> Store:
    """Open the case store at ``url``, migrated to the newest schema unless ``upgrade`` is false."""
    engine = make_engine(url, busy_timeout=busy_timeout)
    try:
        if upgrade:
            migrate(engine)
    except OperationalError as e:
        engine.dispose()
        if busy_error(e):
            raise StoreBusy(busy_message(e)) from None
        where = make_url(normalise_url(url)).render_as_string(hide_password=True)
        raise OreError(f"cannot open the case store at {where}: {e.orig}") from None
    return Store(engine, sessionmaker(engine.execution_options(**{WRITE_LOCK: True}), expire_on_commit=False))
