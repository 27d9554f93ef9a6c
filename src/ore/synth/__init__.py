"""Synthetic scenario generator: a lead package, reference holdings and ground truth.

``generate`` writes, in exactly the formats of ``shared/spec`` and the public sample, an
invented world's lead package, the receiving agency's holdings, and the truth that
``shared/eval/score.py`` scores a triage output against.
"""

from ore.synth.generate import SynthSummary, generate

__all__ = ["SynthSummary", "generate"]
