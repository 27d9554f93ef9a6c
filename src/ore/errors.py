"""Errors a user can act on: each names the file, line and field where it can."""

from __future__ import annotations

from pathlib import Path


class OreError(Exception):
    """An error shown to the user as one clear message, without a traceback."""


class PackageRejected(OreError):
    """The package as a whole is invalid; nothing was written."""


class WorkspaceBusy(OreError):
    """Another ore process holds the workspace."""


class DiskFull(OreError):
    """The disk (or its inodes) ran out under a command; what was committed before is whole."""


# How a full disk reads in the errors of the layers ore writes through: the OS, DuckDB, SQLite.
_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")
# SQLite reports a shared-memory file it cannot grow as a plain I/O error: full only if the disk is.
_IO_TEXTS = ("disk i/o error",)
NEARLY_FULL_BYTES = 64 * 1024 * 1024


def disk_full(error: BaseException, where: Path, doing: str) -> DiskFull | None:
    """``error`` as one clear DiskFull naming what ran out and where, or None if it is not a full disk."""
    import errno
    import os

    chain: list[BaseException] = []
    e: BaseException | None = error
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__ or getattr(e, "orig", None)
    texts = " ".join(str(x).lower() for x in chain)
    full = any(isinstance(x, OSError) and x.errno in (errno.ENOSPC, errno.EDQUOT) for x in chain) or any(
        t in texts for t in _FULL_TEXTS)
    probe = where if where.exists() else where.parent
    try:
        st = os.statvfs(probe)
        free, inodes = st.f_bavail * st.f_frsize, st.f_favail
    except OSError:
        free, inodes = None, None
    if not full and any(t in texts for t in _IO_TEXTS) and free is not None:
        full = free < NEARLY_FULL_BYTES or inodes == 0
    if not full:
        return None
    ran_out = "inodes (files)" if inodes == 0 and free else "space"
    left = "" if free is None else f"; {free / 1024:,.0f} KiB and {inodes:,} inodes free now"
    return DiskFull(
        f"no {ran_out} left on the disk holding {probe} while {doing}{left}. What was committed before "
        "is kept and whole (`ore doctor` checks it); free space there, then run the same command again: it "
        "finishes the rest without duplicating anything."
    )
