"""Settings read from the environment (``ORE_*``) with safe embedded defaults.

The defaults need no server: DuckDB for bulk tables and SQLite for the case store,
both inside the workspace directory.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting ore reads; each is documented in docs/configuration (issue 10)."""

    model_config = SettingsConfigDict(env_prefix="ORE_", extra="ignore")

    workspace: Path = Field(Path("ore-workspace"), description="Directory holding ore's state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the case store; default SQLite inside the workspace."
    )
    lock_timeout: float = Field(
        600.0, description="Seconds a command waits for another ore process to release the workspace."
    )
    busy_timeout: float = Field(
        30.0, description="Seconds a case-store transaction waits for another process's write (SQLite) before "
        "the user is told the store is busy and to try again.", gt=0,
    )
    max_field_chars: int = Field(
        4096, description="Longest accepted CSV field; longer fields quarantine their row."
    )
    max_package_bytes: int = Field(
        8 * 1024**3, description="Largest total uncompressed size accepted from a zip or xlsx archive."
    )
    max_archive_entries: int = Field(10_000, description="Most entries accepted in a zip or xlsx archive.")
    max_compression_ratio: float = Field(
        200, gt=1, description="Highest compression ratio accepted in a zip or xlsx archive over 1 MB "
        "unpacked (per entry and in all); above it the archive is refused as a possible zip bomb."
    )
    audit_checkpoint: Path | None = Field(
        None, description="File kept outside the workspace holding the latest signed audit checkpoint: "
        "ore backup renews it; ore audit verify, ore doctor and ore restore check the log still reaches it."
    )


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI options) winning."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
