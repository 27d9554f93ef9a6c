"""The docs keep up with the program: every CLI option, policy key and setting is documented.

As Datasette's tests/test_docs.py does: a new option, key or ORE_* variable fails here until
the docs say what it is. The CLI reference is written from the program
(``python -m ore.ops.clidoc > docs/cli.md``); the rest are written by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
import yaml
from shared_paths import SHARED

import ore
from ore.config import Settings
from ore.ops.clidoc import SKIP, walk

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SRC = Path(ore.__file__).parent
POLICY_FILES = {
    "src/ore/assess/policy.yaml": "Priority",
    "src/ore/corroborate/policy.yaml": "Evidence",
    "src/ore/resolve/settings.yaml": "Identity",
    "src/ore/auth/roles.yaml": "Access",
    "src/ore/cases/retention.yaml": "Retention",
}


def all_docs() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))


def sections(path: Path, level: str = "## ") -> dict[str, str]:
    """Markdown sections by heading text (without the #s)."""
    out: dict[str, str] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(level):
            current = line[len(level):].strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def commands() -> list[tuple[str, object]]:
    """Every command of ore's CLI, with ore doctor as it will be registered (ore.ops.cli.doctor)."""
    from ore.cli import app
    from ore.ops.cli import doctor

    root = typer.main.get_command(app)
    found = [(" ".join(path), cmd) for path, cmd in walk(root)]
    if "ore doctor" not in {p for p, _ in found}:
        found.append(("ore doctor", typer.main.get_command(_doctor_app(doctor))))
    return found


def _doctor_app(doctor: object) -> typer.Typer:
    app = typer.Typer()
    app.command()(doctor)  # type: ignore[arg-type]
    return app


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    reference = sections(DOCS / "cli.md")
    missing = []
    for path, cmd in commands():
        section = reference.get(f"`{path}`")
        if section is None:
            missing.append(f"{path} (no section '## `{path}`')")
            continue
        for p in cmd.params:  # type: ignore[attr-defined]
            if getattr(p, "param_type_name", "") != "option":
                continue
            for name in [*p.opts, *p.secondary_opts]:
                if name not in SKIP and f"`{name}`" not in section:
                    missing.append(f"{path} {name}")
    assert not missing, ("undocumented in docs/cli.md (regenerate it: python -m ore.ops.clidoc > docs/cli.md): "
                         + ", ".join(missing))


def yaml_keys(node: object) -> set[str]:
    """Every mapping key at any depth, inside lists too."""
    if isinstance(node, dict):
        return {str(k) for k in node} | {k for v in node.values() for k in yaml_keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in yaml_keys(v)}
    return set()


@pytest.mark.parametrize("policy", sorted(POLICY_FILES))
def test_every_policy_key_is_in_the_policy_reference(policy: str) -> None:
    keys = yaml_keys(yaml.safe_load((REPO / policy).read_text(encoding="utf-8")))
    heading = next((h for h in sections(DOCS / "policy.md") if policy in h), None)
    assert heading is not None, f"docs/policy.md has no section naming {policy}"
    section = sections(DOCS / "policy.md")[heading]
    missing = sorted(k for k in keys if f"`{k}`" not in section)
    assert not missing, f"keys of {policy} missing from its section of docs/policy.md: {missing}"


def env_vars_read_by_ore() -> set[str]:
    """Every ORE_* name in ore's source (os.environ reads, envvar= options, messages naming one)."""
    names = set()
    for p in SRC.rglob("*.py"):
        names |= set(re.findall(r"\bORE_[A-Z0-9_]*[A-Z0-9]\b", p.read_text(encoding="utf-8")))
    return names


def test_every_setting_is_in_the_configuration_reference() -> None:
    operator = (DOCS / "operator.md").read_text(encoding="utf-8")
    missing = [f"ORE_{name.upper()}" for name in Settings.model_fields if f"`ORE_{name.upper()}`" not in operator]
    assert not missing, f"settings of ore.config.Settings missing from docs/operator.md: {missing}"


def test_every_environment_variable_is_documented() -> None:
    names = env_vars_read_by_ore()
    assert {"ORE_WORKSPACE", "ORE_DATABASE_URL", "ORE_LOG_FORMAT"} <= names  # the grep itself works
    text = all_docs()
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"ORE_* variables read in src/ore but in no page of docs/: {missing}"


def test_every_page_is_in_the_navigation_and_every_link_resolves() -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)

    def pages(nav: object) -> set[str]:
        if isinstance(nav, str):
            return {nav}
        if isinstance(nav, dict):
            return {p for v in nav.values() for p in pages(v)}
        return {p for v in nav for p in pages(v)}  # type: ignore[union-attr]

    listed = pages(config["nav"])
    present = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert present - listed == set(), f"pages not in mkdocs.yml's nav: {sorted(present - listed)}"
    assert listed - present == set(), f"nav names missing pages: {sorted(listed - present)}"
    broken = []
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            file = target.split("#", 1)[0]  # (access.md links to the policy files in src/: they exist too)
            if not (page.parent / file).resolve().exists():
                broken.append(f"{page.relative_to(DOCS)} -> {target}")
    assert not broken, f"links to nothing: {broken}"


@pytest.mark.parametrize("name", ["lead-package", "reference-data", "triage-output"])
def test_format_pages_are_the_shared_specification(name: str) -> None:
    spec = SHARED / "spec" / f"{name}.md"
    if not spec.exists():
        pytest.skip(f"shared specification not found at {spec}")
    assert spec.read_text(encoding="utf-8").strip() in (DOCS / "formats" / f"{name}.md").read_text(encoding="utf-8"), (
        f"docs/formats/{name}.md differs from {spec}: copy it again")
