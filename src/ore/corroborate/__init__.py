"""Corroborate: is each payment record the cardholder's own purchase, or someone else's use of the card?

A record is an allegation about a card, not a person. This stage fires evidence indicators per
record (card alerts, chargebacks, never-visited accounts, one email or IP behind many cards,
names unlike the cardholder, carding, sign-up bursts; and the cardholder's own-use signals),
combines them with the weights of a YAML policy into ``fraud_suspected``, grades each person's
evidence (A corroborated, B uncorroborated, C contradicted) with ``likely_victim``, and groups
fraud-suspected records into unidentified subjects: the people really behind the stolen cards.
"""

from ore.corroborate.policy import Policy, PolicyError, load_policy
from ore.corroborate.stage import CorroborateSummary, corroborate

__all__ = ["CorroborateSummary", "Policy", "PolicyError", "corroborate", "load_policy"]
