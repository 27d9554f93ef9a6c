"""Alembic environment for the case store: run programmatically by ``ore.store.migrate``.

The caller passes an open connection in ``config.attributes["connection"]``; there is
no alembic.ini and no URL here, so the same migrations serve SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from ore.store import access  # noqa: F401 - registers the access and audit tables
from ore.store import watch_models  # noqa: F401 - and the watch's tables
from ore.store.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
