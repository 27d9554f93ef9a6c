"""Audit: the append-only, hash-chained log of what was done with personal data, and its checks.

``record`` appends in the caller's transaction (an action whose entry fails does not
happen); ``verify_chain`` names the first entry that does not fit; checkpoints signed
with the workspace key catch a restored older copy; ``search`` is for auditors and is
itself logged.
"""

from ore.audit.chain import CATEGORIES, record, record_for
from ore.audit.checkpoint import check_checkpoint, make_checkpoint, read_checkpoint, write_checkpoint
from ore.audit.search import search
from ore.audit.verify import Verification, verify_chain

__all__ = ["CATEGORIES", "Verification", "check_checkpoint", "make_checkpoint", "read_checkpoint", "record", "record_for", "search",
           "verify_chain", "write_checkpoint"]
