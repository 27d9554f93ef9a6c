"""Report: the triage output files and the self-contained HTML report."""

from ore.report.html import write_report
from ore.report.output import write_outputs

__all__ = ["write_outputs", "write_report"]
