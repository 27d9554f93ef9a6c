"""Store: the transactional case store (SQLAlchemy 2 models, Alembic migrations).

SQLite inside the workspace by default; PostgreSQL where ``ORE_DATABASE_URL`` names
one. Everything that changes a case goes through a ``Store.session()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ore.store import access  # noqa: F401 - the access and audit tables share the metadata
from ore.store import watch_models  # noqa: F401 - and the watch's tables
from ore.store.engine import (
    PERSONS_LOCK,
    CaseConflict,
    Store,
    StoreBusy,
    current_revision,
    head_revision,
    migrate,
    open_store,
    serialise,
)

if TYPE_CHECKING:
    from ore.workspace import Workspace


def store_for(ws: Workspace) -> Store:
    """The case store of a workspace, migrated (under the workspace lock) on first use."""
    with ws.lock("case store migration"):
        return open_store(ws.database_url, busy_timeout=ws.settings.busy_timeout)


__all__ = ["PERSONS_LOCK", "CaseConflict", "Store", "StoreBusy", "current_revision", "head_revision", "migrate",
           "open_store", "serialise", "store_for"]
