"""The triage report: one self-contained HTML file (no external assets, no scripts).

Counts by band, force and evidence grade; the fraud picture (likely victims
protected, unidentified subjects); the top-priority list with each reason's
sentence. Charts are inline SVG so the file opens on a closed network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape

from ore import __version__

BAND_ORDER = ["P1", "P2", "P3", "P4", "none"]
BAND_COLOURS = {"P1": "#b2182b", "P2": "#ef8a62", "P3": "#fddbc7", "P4": "#d1e5f0", "none": "#bababa"}


@dataclass
class Bar:
    label: str
    value: int
    colour: str = "#4575b4"


def _bars(rows: list[tuple[Any, int]], colours: dict[str, str] | None = None) -> list[Bar]:
    return [Bar(str(k) if k is not None else "unallocated", int(v), (colours or {}).get(str(k), "#4575b4"))
            for k, v in rows]


def report_data(con: duckdb.DuckDBPyConnection, package_id: str, top: int = 100) -> dict[str, Any]:
    q = lambda sql: con.execute(sql, [package_id]).fetchall()  # noqa: E731
    bands = dict(q("SELECT priority, count(*) FROM person_priority WHERE package_id = ? GROUP BY 1"))
    by_band = [(b, bands.get(b, 0)) for b in BAND_ORDER]
    by_force = q(
        """SELECT coalesce(f.force_code, 'unallocated'), count(*) FROM person_force f
           JOIN person_priority a USING (package_id, person_id)
           WHERE f.package_id = ? AND a.priority <> 'none' GROUP BY 1 ORDER BY 2 DESC, 1"""
    )
    by_grade = q("SELECT evidence_grade, count(*) FROM person_evidence WHERE package_id = ? GROUP BY 1 ORDER BY 1")
    totals = con.execute(
        """SELECT (SELECT count(*) FROM leads WHERE package_id = $1),
                  (SELECT count(*) FROM quarantine WHERE package_id = $1),
                  (SELECT count(*) FROM identified_persons WHERE package_id = $1),
                  (SELECT count(*) FROM record_evidence WHERE package_id = $1 AND fraud_suspected),
                  (SELECT count(*) FROM person_evidence WHERE package_id = $1 AND likely_victim),
                  (SELECT count(*) FROM unidentified_subjects WHERE package_id = $1),
                  (SELECT count(*) FROM person_force f JOIN person_priority a USING (package_id, person_id)
                   WHERE f.package_id = $1 AND f.force_code IS NULL AND a.priority <> 'none')""",
        [package_id],
    ).fetchall()
    names = ["records", "quarantined", "persons", "fraud_records", "likely_victims", "subjects", "unallocated"]
    top_rows = con.execute(
        """
        SELECT a.person_id, coalesce(p.display_name, s.display_name), a.priority, a.reasons, a.sentences,
               f.force_code, e.evidence_grade
        FROM person_priority a
        LEFT JOIN identified_persons p USING (package_id, person_id)
        LEFT JOIN unidentified_subjects s ON s.package_id = a.package_id AND s.subject_id = a.person_id
        LEFT JOIN person_force f USING (package_id, person_id)
        LEFT JOIN person_evidence e USING (package_id, person_id)
        WHERE a.package_id = $1 AND a.priority IN ('P1', 'P2')
        ORDER BY a.priority, len(a.reasons) DESC, a.person_id
        LIMIT $2
        """,
        [package_id, top],
    ).fetchall()
    subjects = con.execute(
        """SELECT s.subject_id, s.display_name, s.record_count, s.card_count, a.priority
           FROM unidentified_subjects s LEFT JOIN person_priority a
             ON a.package_id = s.package_id AND a.person_id = s.subject_id
           WHERE s.package_id = ? ORDER BY s.record_count DESC, s.subject_id LIMIT 50""",
        [package_id],
    ).fetchall()
    return {
        "package_id": package_id,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "totals": dict(zip(names, totals[0], strict=True)),
        "by_band": _bars(by_band, BAND_COLOURS),
        "by_force": _bars(by_force),
        "by_grade": _bars(by_grade, {"A": "#1a9850", "B": "#fee08b", "C": "#d73027"}),
        "top": [
            {"person_id": r[0], "name": r[1], "priority": r[2], "reasons": (r[3] or "").split(";"),
             "sentences": json.loads(r[4] or "[]"), "force": r[5] or "unallocated", "grade": r[6] or ""}
            for r in top_rows
        ],
        "subjects": [dict(zip(("subject_id", "name", "records", "cards", "priority"), r, strict=True)) for r in subjects],
    }


def write_report(con: duckdb.DuckDBPyConnection, package_id: str, path: Path, extra: dict[str, Any] | None = None) -> None:
    env = Environment(loader=PackageLoader("ore.report", "templates"), autoescape=select_autoescape(["html"]))
    html = env.get_template("triage.html").render(**report_data(con, package_id), extra=extra or {})
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
