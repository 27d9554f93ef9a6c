"""The documentation site builds (strict) from the repository alone and loads nothing from outside.

Police networks are often offline: no web fonts, no CDN scripts or styles, no images from
elsewhere. Links *to* outside pages (a reader may follow them) are allowed; assets are not.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# An asset the browser would fetch by itself: script/img/source/iframe src, <link href> of any rel
# (stylesheet, preconnect, preload, icon, manifest), CSS url() and @import.
ASSET_URLS = (
    re.compile(r"<(?:script|img|source|iframe|audio|video|embed)\b[^>]*\bsrc=[\"']?(?:https?:)?//", re.I),
    re.compile(r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//", re.I),
    re.compile(r"url\(\s*[\"']?(?:https?:)?//", re.I),
    re.compile(r"@import\s+[\"'](?:https?:)?//", re.I),
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.skip("mkdocs and mkdocs-material are not installed: pip install -e '.[docs]' (make docs does)")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                       capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_every_page_is_built(site: Path) -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    assert config["theme"]["font"] == "false", "theme.font: false (no Google Fonts)"
    for page in (REPO / "docs").rglob("*.md"):
        html = site / page.relative_to(REPO / "docs").with_suffix(".html")
        assert html.exists(), f"{html} not built"
    assert "Keep a Changelog" in (site / "changelog.html").read_text(encoding="utf-8")  # the snippet included it


def test_no_asset_is_fetched_from_outside(site: Path) -> None:
    found = []
    for f in site.rglob("*"):
        if f.suffix not in (".html", ".css"):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        for pattern in ASSET_URLS:
            found += [f"{f.relative_to(site)}: {m.group(0)[:120]}" for m in pattern.finditer(text)]
    assert not found, f"assets from outside: {found[:10]}"
    assert "fonts.googleapis.com" not in "".join(p.read_text(errors="replace") for p in site.rglob("*.html"))


def test_nothing_turns_on_what_the_theme_would_fetch(site: Path) -> None:
    """Material's script fetches mermaid (unpkg) for a mermaid diagram and repository facts (GitHub's API) for
    a repo_url: neither may be used."""
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert "repo_url" not in config and "site_url" not in config
    for page in (REPO / "docs").rglob("*.md"):
        assert "```mermaid" not in page.read_text(encoding="utf-8"), page
