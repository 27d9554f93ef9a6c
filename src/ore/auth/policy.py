"""The access policy, read from ``roles.yaml`` (or ``ORE_ROLES_FILE``): roles, permissions, who approves.

Policy is data so that a force's information-governance lead can read it without reading
code; this module only checks that the file is coherent and answers questions about it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from ore.errors import OreError


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    all_forces: bool
    sees_sealed: bool
    permissions: frozenset[str]


@dataclass(frozen=True)
class Policy:
    roles: dict[str, Role]
    steps: dict[str, str]
    two_person: dict[str, frozenset[str]]
    purposes: dict[str, str]
    two_person_request: dict[str, str]

    def step_permission(self, status: str) -> str:
        return self.steps.get(status, "cases.transition")

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset().union(*(r.permissions for r in self.roles.values()))


def _parse(data: dict, where: str) -> Policy:
    try:
        roles = {}
        for name, r in data["roles"].items():
            if r["forces"] not in ("all", "own") or r["sealed"] not in ("visible", "hidden"):
                raise OreError(f"{where}: role {name}: forces must be all|own and sealed visible|hidden")
            roles[name] = Role(name, r.get("description", ""), r["forces"] == "all", r["sealed"] == "visible",
                               frozenset(r.get("permissions") or ()))
        two = {action: frozenset(approvers) for action, approvers in (data.get("two_person") or {}).items()}
        for action, approvers in two.items():
            if unknown := approvers - roles.keys():
                raise OreError(f"{where}: two_person {action} names unknown roles {sorted(unknown)}")
        asks = {action: str(permission) for action, permission in (data.get("two_person_request") or {}).items()}
        if missing := two.keys() - asks.keys():
            raise OreError(f"{where}: two_person_request names no permission for {sorted(missing)}")
        held = frozenset().union(*(r.permissions for r in roles.values()))
        if strays := {p for p in asks.values() if p not in held}:
            raise OreError(f"{where}: two_person_request names permissions no role holds: {sorted(strays)}")
        if unknown := asks.keys() - two.keys():
            raise OreError(f"{where}: two_person_request names actions not under two_person: {sorted(unknown)}")
        return Policy(roles, dict(data.get("steps") or {}), two, dict(data.get("purposes") or {}), asks)
    except (KeyError, TypeError, AttributeError) as e:
        raise OreError(f"{where} is not a roles policy (missing or malformed {e})") from None


@lru_cache(maxsize=4)
def load_policy(path: str | None = None) -> Policy:
    """The policy in force: ``path``, else ``ORE_ROLES_FILE``, else the shipped ``roles.yaml``."""
    path = path or os.environ.get("ORE_ROLES_FILE")
    if path:
        text, where = Path(path).read_text(encoding="utf-8"), path
    else:
        text, where = resources.files("ore.auth").joinpath("roles.yaml").read_text(encoding="utf-8"), "roles.yaml"
    return _parse(yaml.safe_load(text), where)
