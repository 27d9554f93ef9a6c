"""Shared fixtures: the public sample ingested once into a temporary workspace and resolved."""

from __future__ import annotations

import pytest
from rsfixtures import PACKAGE_ID, SAMPLE

from ore.ingest import ingest, load_reference
from ore.resolve import resolve
from ore.workspace import Workspace


@pytest.fixture(scope="session")
def sample_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    if not SAMPLE.exists():
        pytest.skip("shared sample public-1 not present")
    ws = Workspace.open(tmp_path_factory.mktemp("resolve-ws"))
    ingest(ws, SAMPLE / "package")
    load_reference(ws, SAMPLE / "reference")
    return ws


@pytest.fixture(scope="session")
def resolved(sample_ws: Workspace, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("resolve-out")
    with sample_ws.duckdb() as con:
        summary = resolve(con, PACKAGE_ID, out)
        records = dict(con.execute(
            "SELECT record_id, person_id FROM resolved_records WHERE package_id = ?", [PACKAGE_ID]).fetchall())
        links = con.execute(
            "SELECT person_id, holding, ref, match_probability, match_weight, detail FROM holding_links "
            "WHERE package_id = ?", [PACKAGE_ID]).fetchall()
        persons = con.execute(
            "SELECT * FROM identified_persons WHERE package_id = ? ORDER BY person_id", [PACKAGE_ID]).fetchall()
    return {"summary": summary, "records": records, "links": links, "persons": persons, "out": out}
