"""A triage stage that fails half-way through replacing its rows leaves the previous run's rows.

Assess and allocate replace a package's bands and forces; a failure (a kill, a full disk)
between removing the old rows and writing the new must not leave persons with no band or no
force where the last run gave them one.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import duckdb
import pytest

from ore.allocate import allocate
from ore.assess import assess
from ore.config import get_settings
from ore.pipeline import triage
from ore.synth import generate
from ore.workspace import Workspace


class _DiskFullOnWrite:
    """A connection whose hand-over of the stage's new rows fails, as a full disk would."""

    def __init__(self, con: duckdb.DuckDBPyConnection, batch: str) -> None:
        self._con = con
        self._batch = batch

    def register(self, name: str, table: Any) -> Any:
        if name == self._batch:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._con.register(name, table)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@pytest.fixture(scope="module")
def triaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str]:
    root = tmp_path_factory.mktemp("stages")
    generate(root / "scenario", people=600, subscribers=60, seed=3)
    ws = Workspace.open(root / "ws", get_settings())
    summary = triage(ws, root / "scenario" / "package", root / "out", reference=root / "scenario" / "reference")
    return ws, summary.package_id


@pytest.mark.parametrize(("stage", "table", "batch"), [
    (assess, "person_priority", "_ore_rows"),  # the name ore.stagesql.replace_package_rows hands the rows over by
    (allocate, "person_force", "_ore_rows"),
], ids=["assess", "allocate"])
def test_a_stage_failing_between_delete_and_insert_keeps_the_last_runs_rows(
        triaged: tuple[Workspace, str], stage: Callable[..., Any], table: str, batch: str) -> None:
    ws, package = triaged
    with ws.duckdb() as con:
        before = sorted(con.execute(f"SELECT * FROM {table} WHERE package_id = ?", [package]).fetchall())
        assert before
        with pytest.raises(OSError):
            stage(_DiskFullOnWrite(con, batch), package)
        after = sorted(con.execute(f"SELECT * FROM {table} WHERE package_id = ?", [package]).fetchall())
        assert after == before
        stage(con, package)  # and the next run replaces them, once
        assert sorted(con.execute(f"SELECT * FROM {table} WHERE package_id = ?", [package]).fetchall()) == before

