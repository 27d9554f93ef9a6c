"""ore: triage of bulk payment-record leads, from package to outcome.

A payment record is an allegation about a card, not a person: every stage keeps
identity, evidence and risk as separate judgements, each with its reasons.
"""

__version__ = "0.1.0"
