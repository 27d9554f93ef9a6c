"""Passwords: argon2id hashes, and the rules a new password must pass.

argon2id is the current OWASP recommendation. Production uses argon2-cffi's defaults
(RFC 9106's low-memory profile); ``ORE_ARGON2_TIME_COST``, ``ORE_ARGON2_MEMORY_KIB`` and
``ORE_ARGON2_PARALLELISM`` change them (the tests set them low: hashing is then fast, and
what is tested is the same code). A hash made under other parameters still verifies, and
is re-made under the current ones at the next sign-in.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ore.errors import OreError

MIN_LENGTH = 8
MAX_LENGTH = 256  # argon2 takes any length; a cap stops a megabyte "password" costing a CPU second


class WeakPassword(OreError):
    """A new password that the rules refuse; the message says which rule."""


def hasher() -> PasswordHasher:
    """An argon2id hasher with the configured cost (read each time: tests and operators may change it)."""
    default = PasswordHasher()
    return PasswordHasher(
        time_cost=int(os.environ.get("ORE_ARGON2_TIME_COST", default.time_cost)),
        memory_cost=int(os.environ.get("ORE_ARGON2_MEMORY_KIB", default.memory_cost)),
        parallelism=int(os.environ.get("ORE_ARGON2_PARALLELISM", default.parallelism)),
    )


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True if ``password`` matches the stored hash; never raises for a wrong or damaged hash."""
    try:
        return hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True


@lru_cache(maxsize=2)
def common_passwords(path: str | None = None) -> frozenset[str]:
    """The refused common passwords: the shipped list, or ``ORE_COMMON_PASSWORDS``."""
    path = path or os.environ.get("ORE_COMMON_PASSWORDS")
    text = (Path(path).read_text(encoding="utf-8") if path
            else resources.files("ore.auth").joinpath("common-passwords.txt").read_text(encoding="utf-8"))
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str = "") -> None:
    """Refuse a password that is short, common, or the user name; the message says which."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters (this has {len(password)})")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    if password.lower() in common_passwords():
        raise WeakPassword("that password is on the list of common passwords: choose another")
    if username and username.lower() in password.lower():
        raise WeakPassword("a password may not contain the user name")
