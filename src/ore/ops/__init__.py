"""Operations: checking a deployment (``ore doctor``), the version line, structured logs.

Nothing here decides anything about a person; it tells an operator whether ore can be
trusted to run on this machine, and keeps personal data out of its logs.
"""

from ore.ops.doctor import Check, DoctorReport, run_checks, version_text
from ore.ops.logs import configure_logging, redact

__all__ = ["Check", "DoctorReport", "configure_logging", "redact", "run_checks", "version_text"]
