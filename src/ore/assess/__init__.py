"""Assess: advisory priority bands P1-P4 or none, each with its reasons, from a policy file."""

from ore.assess.bands import Assessment, assess_person
from ore.assess.facts import Fact, PersonFacts
from ore.assess.policy import Policy, load_policy
from ore.assess.run import assess

__all__ = ["Assessment", "Fact", "PersonFacts", "Policy", "assess", "assess_person", "load_policy"]
