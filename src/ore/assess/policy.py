"""The priority policy file: loaded, checked, and given names the code can use."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ore.errors import OreError

BANDS = ("P1", "P2", "P3", "P4", "none")


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    band: str | None
    sentence: str

    @field_validator("band")
    @classmethod
    def _band(cls, v: str | None) -> str | None:
        if v is not None and v not in BANDS:
            raise ValueError(f"band {v!r} is not one of {', '.join(BANDS)}")
        return v


class Policy(BaseModel):
    """Bands, factors and sentences of the priority policy (see policy.yaml for the meaning of each key)."""

    model_config = ConfigDict(extra="forbid")
    version: int
    bands: list[str]
    deadlines: dict[str, str]
    factors: dict[str, Factor]
    register_risk_bands: dict[str, str]
    not_suspect: dict[str, str]
    unidentified: dict[str, Factor]
    min_link_probability: float = Field(ge=0, le=1)
    possible_link_probability: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _possible_below_min(self) -> Policy:
        if self.possible_link_probability > self.min_link_probability:
            raise ValueError("possible_link_probability must not be above min_link_probability")
        return self

    @field_validator("bands")
    @classmethod
    def _bands(cls, v: list[str]) -> list[str]:
        if tuple(v) != BANDS:
            raise ValueError(f"bands must be {list(BANDS)} in that order")
        return v

    @field_validator("register_risk_bands")
    @classmethod
    def _risk(cls, v: dict[str, str]) -> dict[str, str]:
        for level, band in v.items():
            if band not in BANDS:
                raise ValueError(f"register_risk_bands.{level}: {band!r} is not a band")
        return v

    def rank(self, band: str) -> int:
        """Smaller is more urgent."""
        return BANDS.index(band)


REQUIRED_FACTORS = (
    "registered_offender", "contact_offence_child", "works_with_children", "children_in_household",
    "sexual_offence_conviction", "iioc_conviction", "repeat_purchases", "abuse_purchase", "open_case",
    "evidence_contradicted",
)


def load_policy(path: Path | None = None) -> Policy:
    """The policy at ``path``, or the one shipped with ore; errors name the file and key."""
    if path is None:
        text = resources.files("ore.assess").joinpath("policy.yaml").read_text(encoding="utf-8")
        label = "ore/assess/policy.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise OreError(f"{path}: cannot read the policy file ({e.strerror})") from None
        label = str(path)
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise OreError(f"{label}: not valid YAML ({e})") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OreError(f"{label}: {where}: {first['msg']}") from None
    missing = [f for f in REQUIRED_FACTORS if f not in policy.factors]
    if missing:
        raise OreError(f"{label}: factors: missing {', '.join(missing)}")
    for key in ("likely_victim", "adult_only"):
        if key not in policy.not_suspect:
            raise OreError(f"{label}: not_suspect: missing {key}")
    for key in ("visited", "billing_only"):
        if key not in policy.unidentified:
            raise OreError(f"{label}: unidentified: missing {key}")
    return policy
