"""Errors a user can act on: each names the file, line and field where it can."""

from __future__ import annotations


class OreError(Exception):
    """An error shown to the user as one clear message, without a traceback."""


class PackageRejected(OreError):
    """The package as a whole is invalid; nothing was written."""


class WorkspaceBusy(OreError):
    """Another ore process holds the workspace."""
