"""Small scenarios shared by the synth tests (generated once per session: a second or two each)."""

from __future__ import annotations

import pytest
from synthkit import SMALL

from ore.synth import SynthSummary, generate


@pytest.fixture(scope="session")
def standard(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    return generate(tmp_path_factory.mktemp("standard"), seed=7, **SMALL)


@pytest.fixture(scope="session")
def hard(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    return generate(tmp_path_factory.mktemp("hard"), seed=11, difficulty="hard", **SMALL)


@pytest.fixture(scope="session", params=["standard", "hard"])
def scenario(request: pytest.FixtureRequest) -> SynthSummary:
    return request.getfixturevalue(request.param)
