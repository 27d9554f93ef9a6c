"""Card numbers in bulk: checked as ingest checks them, tokenised as ingest tokenises them, faster.

A token links a feed's card to a convicted person's old record only if both were made the
same way under the same key, so this module makes exactly ingest's token (a test checks
it against ``Tokeniser.token`` on many numbers). It is faster because HMAC's two keyed
SHA-256 states (key XOR ipad, key XOR opad) are computed once and copied per card, and
digests are collected as bytes and turned to hex once: about 1.6 times ingest's rate on
one core. Only distinct numbers are tokenised, and a large batch is shared among worker
processes (``workers``), each with the same key.

``number_problems`` applies ingest's checks (``ore.ingest.cards.card_digits``: digits only,
12 to 19 of them, Luhn) to a whole column at once with numpy; a test checks it against
ingest's functions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pyarrow as pa

OK, NOT_DIGITS, LENGTH, LUHN = 0, 1, 2, 3  # number_problems' codes
CHECK_CHUNK = 1 << 20
BLOCK = 64  # SHA-256 block size, the HMAC pad length
PARALLEL_FROM = 400_000  # below this, starting workers costs more than it saves


def _states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def digests(key: bytes, numbers: Sequence[bytes]) -> bytes:
    """HMAC-SHA256 of each number (ASCII digits) under ``key``, concatenated (32 bytes each)."""
    inner, outer = _states(key)
    icopy, ocopy = inner.copy, outer.copy
    out: list[bytes] = []
    append = out.append
    for n in numbers:
        i = icopy()
        i.update(n)
        o = ocopy()
        o.update(i.digest())
        append(o.digest())
    return b"".join(out)


_SHARED: tuple[bytes, pa.Array] | None = None  # what forked workers read: the key and the numbers


def _digests_job(span: tuple[int, int]) -> bytes:
    """In a forked worker: the digests of its slice of the numbers it inherited (nothing is sent to it)."""
    assert _SHARED is not None
    key, numbers = _SHARED
    return digests(key, numbers.slice(span[0], span[1] - span[0]).to_pylist())


def tokens(key: bytes, numbers: pa.Array | Sequence[str], workers: int | None = None) -> pa.Array:
    """The tokens (64 lower-case hex characters, as ingest writes them) of ``numbers``, in order."""
    hexed = memoryview(digest_array(key, numbers, workers).buffers()[1]).hex().encode("ascii")  # lower case
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(64), len(numbers), [None, pa.py_buffer(hexed)])
    return fixed.cast(pa.binary()).cast(pa.string())


def digest_array(key: bytes, numbers: pa.Array | Sequence[str], workers: int | None = None) -> pa.Array:
    """The tokens of ``numbers`` as 32-byte digests (what a token's hex spells), in order: the screen joins
    on these, so ten million numbers are never turned into text."""
    global _SHARED
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    array = numbers.cast(pa.binary()) if isinstance(numbers, pa.Array) else pa.array(
        [n.encode("ascii") for n in numbers], pa.binary())
    n = len(array)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers > 1 and n >= PARALLEL_FROM:
        step = -(-n // workers)
        # fork: each worker inherits the numbers and is told only its span; it makes no DuckDB call
        _SHARED = (key, array)
        try:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                blob = b"".join(pool.map(_digests_job, [(i, min(i + step, n)) for i in range(0, n, step)]))
        finally:
            _SHARED = None
    else:
        blob = digests(key, array.to_pylist())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), n, [None, pa.py_buffer(blob)])


def number_problems(numbers: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """For each card number (spaces and dashes already removed, none null): OK, NOT_DIGITS, LENGTH or LUHN."""
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    a = numbers.cast(pa.string())
    n = len(a)
    if n == 0:
        return np.zeros(0, np.int8)
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int32, count=n + 1, offset=a.offset * 4)
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8) if a.buffers()[2] is not None else np.zeros(0, np.uint8)
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    lengths = ends - starts
    not_digits = np.zeros(n, bool)
    stray = np.nonzero((data < 48) | (data > 57))[0]  # bytes that are not ASCII digits, and whose they are
    not_digits[np.searchsorted(offsets, stray, side="right") - 1] = True
    bad_length = (lengths < 12) | (lengths > 19)
    bad_luhn = np.zeros(n, bool)
    checkable = ~not_digits & ~bad_length
    for lo in range(0, n, CHECK_CHUNK):  # bounded temporaries: one chunk's digit matrix at a time
        hi = min(lo + CHECK_CHUNK, n)
        for width in np.unique(lengths[lo:hi][checkable[lo:hi]]):  # one digit matrix per card length
            rows = lo + np.nonzero((lengths[lo:hi] == width) & checkable[lo:hi])[0]
            if len(rows) == hi - lo:  # every number of the chunk this long: the bytes are the matrix
                m = data[starts[lo]:ends[hi - 1]].reshape(hi - lo, width)
            else:
                m = data[starts[rows, None] + np.arange(width)]
            d = m - np.uint8(48)
            doubled = (width - 1 - np.arange(width)) % 2 == 1  # every second digit from the right, less 9 above 9
            twice = d[:, doubled] * np.uint8(2)
            d[:, doubled] = twice - np.uint8(9) * (twice > 9)
            bad_luhn[rows] = d.sum(axis=1, dtype=np.uint16) % 10 != 0
    return np.select([not_digits, bad_length, bad_luhn], [NOT_DIGITS, LENGTH, LUHN], OK).astype(np.int8)
