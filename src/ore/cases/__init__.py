"""Cases: from a committed triage to outcome.

The lifecycle (a declared table of steps and named rules), deadlines from the bands,
safeguarding counts, and the funnel counted from case rows. Every function takes a
SQLAlchemy session from ``ore.store``; the CLI and (later) the web call the same ones.
"""

from ore.cases.deadlines import overdue, policy_deadlines
from ore.cases.funnel import Funnel, funnel
from ore.cases.importer import ImportSummary, import_triage
from ore.cases.lifecycle import (
    ELIMINATION_GROUNDS,
    RULES,
    STATES,
    TRANSITIONS,
    Request,
    TransitionRefused,
    seal,
    transition,
    transition_many,
    unseal,
)
from ore.cases.queries import find_case, list_cases, show_case
from ore.cases.safeguarding import record_safeguarding

__all__ = [
    "ELIMINATION_GROUNDS", "RULES", "STATES", "TRANSITIONS", "Funnel", "ImportSummary", "Request",
    "TransitionRefused", "find_case", "funnel", "import_triage", "list_cases", "overdue", "policy_deadlines",
    "record_safeguarding", "seal", "show_case", "transition", "transition_many", "unseal",
]
