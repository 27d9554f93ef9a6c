"""The funnel report as a CSV or a self-contained HTML page (inline SVG, no external assets).

Police networks are often offline, and a report must open from a USB stick: no CDN,
no script, no font download. CSV cells that a spreadsheet would run as a formula are
neutralised (a leading apostrophe), since force codes and group names come from data.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from html import escape

from ore.cases.funnel import COLUMNS, Funnel, FunnelRow
from ore.report.safecsv import safe_cell

LABELS = {
    "identified": "Identified", "triaged": "Band confirmed", "disseminated": "Disseminated",
    "arrested": "Arrested", "interviewed": "Interviewed", "charged": "Charged", "cautioned": "Cautioned",
    "no_further_action": "No further action", "released": "Released pending decision", "convicted": "Convicted",
    "acquitted": "Acquitted", "eliminated": "Eliminated (wrongly identified)",
    "children_identified": "Children identified", "children_safeguarded": "Children safeguarded",
}
HEADLINE = ("identified", "arrested", "charged", "convicted", "cautioned", "no_further_action", "eliminated",
            "children_safeguarded")


def human(d: timedelta | None) -> str:
    if d is None:
        return ""
    hours = d.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _rows(f: Funnel) -> list[FunnelRow]:
    return [*f.rows, f.total] if f.by else [f.total]


def funnel_csv(f: Funnel) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([f.by or "group", *COLUMNS])
    for row in _rows(f):
        w.writerow([safe_cell(row.group), *(row.counts[c] for c in COLUMNS)])
    return out.getvalue()


def _bars(row: FunnelRow) -> str:
    """A horizontal bar per headline stage, scaled to the number identified."""
    top = max(row.counts["identified"], row.counts["children_safeguarded"], 1)
    width, bar_h, gap, label_w = 720, 26, 8, 230
    parts = []
    for i, col in enumerate(HEADLINE):
        n = row.counts[col]
        y = i * (bar_h + gap)
        w = 0 if n == 0 else max(2, round((width - label_w - 90) * n / top))
        colour = "#1b6f5a" if col == "children_safeguarded" else "#2f4b7c" if col != "eliminated" else "#a05a2c"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(LABELS[col])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}"/>'
            f'<text x="{label_w + w + 6}" y="{y + 18}">{n:,}</text>'
        )
    height = len(HEADLINE) * (bar_h + gap)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Funnel" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="14">'
            + "".join(parts) + "</svg>")


def funnel_html(f: Funnel, *, title: str = "Operation funnel", generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    head = "".join(f"<th>{escape(LABELS[c])}</th>" for c in COLUMNS)
    body = "".join(
        f"<tr><th>{escape(r.group)}</th>" + "".join(f"<td>{r.counts[c]:,}</td>" for c in COLUMNS) + "</tr>"
        for r in _rows(f)
    )
    med = "".join(
        f"<tr><th>{escape(b)}</th><td>{f.acted.get(b, 0):,}</td><td>{escape(human(d))}</td></tr>"
        for b, d in sorted(f.median_to_first_action.items())
    ) or '<tr><td colspan="3">No disseminated case has been acted on yet.</td></tr>'
    problems = f.inconsistencies()
    warn = ("<p class=warn>The funnel does not add up: " + escape("; ".join(problems)) + "</p>") if problems else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #bbb;padding:4px 8px;text-align:right}} th{{background:#f2f2f2}}
.warn{{color:#a00;font-weight:bold}} small{{color:#666}}
</style></head><body>
<h1>{escape(title)}</h1>
<p><small>Counted from case rows at {escape(generated.isoformat(timespec="seconds"))}. A person counts at every
stage they reached: arrested and later eliminated counts in both.</small></p>
{warn}
{_bars(f.total)}
<h2>By {escape(f.by or "operation")}</h2>
<table><thead><tr><th>{escape(f.by or "")}</th>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Median time from dissemination to first action, by band</h2>
<table><thead><tr><th>band</th><th>cases acted on</th><th>median</th></tr></thead><tbody>{med}</tbody></table>
</body></html>
"""
