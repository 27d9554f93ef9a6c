"""Opening the case store: the engine, its connection settings, and migrations on first use.

SQLite (the default, a file in the workspace) is opened in WAL mode with
``synchronous=FULL`` on every connection: a committed case decision survives a
power cut, and readers do not block the writer. Foreign keys are switched on,
which SQLite otherwise ignores. PostgreSQL (``ORE_DATABASE_URL``) is reached through
psycopg 3; a ``postgresql://`` URL is read as ``postgresql+psycopg://``.

The schema is Alembic's, shipped in ``ore/store/migrations``; ``open_store`` brings
any database to the newest revision before use, so there is no separate setup step.
"""

from __future__ import annotations

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
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from ore.errors import OreError


class CaseConflict(OreError):
    """Someone else changed the case between this session's read and its write."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names by default."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
    finally:
        cur.close()


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


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
    with engine.begin() as conn:
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
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


APP_ROLE = "ore_app"


def _enter_app_role(session: Session, _transaction: Any, connection: Any) -> None:
    """At each transaction's start: act as ``ore_app`` with the principal's row-level-security settings."""
    from ore.auth.scope import session_settings

    settings = session_settings(session.info["principal"])
    connection.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
    connection.execute(text("SELECT " + ", ".join(f"set_config('{k}', :v{i}, true)" for i, k in enumerate(settings))),
                       {f"v{i}": v for i, v in enumerate(settings.values())})


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Open the case store at ``url``, migrated to the newest schema unless ``upgrade`` is false."""
    engine = make_engine(url)
    try:
        if upgrade:
            migrate(engine)
    except OperationalError as e:
        engine.dispose()
        where = make_url(normalise_url(url)).render_as_string(hide_password=True)
        raise OreError(f"cannot open the case store at {where}: {e.orig}") from None
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
