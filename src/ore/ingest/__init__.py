"""Ingest: read, validate, tokenise and store lead packages and reference holdings.

Every input row is accepted or quarantined with its line and reason; card numbers
are tokenised on entry and never stored in clear.
"""

from ore.ingest.package import FileReport, IngestReport, ingest
from ore.ingest.reference import load_reference

__all__ = ["FileReport", "IngestReport", "ingest", "load_reference"]
