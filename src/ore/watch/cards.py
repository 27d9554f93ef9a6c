"""Card numbers in bulk: checked as ingest checks them, tokenised as ingest tokenises them, faster.

A token links a feed's card to a convicted person's old record only if both were made the
same way under the same key, so this module makes exactly ingest's token (tests check it
against ``Tokeniser.token`` on many numbers, and the whole raw path of a screen against
ingest's ``card_digits`` and ``Tokeniser`` row by row). It is faster because HMAC's two keyed
SHA-256 states (key XOR ipad, key XOR opad) are computed once and copied per card, and
digests are written a block at a time into one byte matrix: about 1.9 times ingest's rate on
one core. Only distinct numbers are tokenised, and a large batch is shared among worker
processes (``workers``), each with the same key.

``scan`` applies ingest's checks (``ore.ingest.cards.card_digits``: digits only, 12 to 19 of
them, Luhn) to a whole column at once with numpy, a block of rows at a time, and reads each
valid number as a 64-bit integer; ``distinct_rows`` then finds the distinct numbers by sorting
those integers (no Python object per row, no hashing of strings).
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pyarrow as pa

OK, NOT_DIGITS, LENGTH, LUHN = 0, 1, 2, 3  # number_problems' codes
CHECK_CHUNK = 1 << 16  # numbers checked at a time: small temporaries, reused rather than newly mapped
HASH_CHUNK = 1 << 16  # numbers hashed at a time
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
    return bytes(_hmacs(key, numbers))


def _hmacs(key: bytes, numbers: Sequence[bytes]) -> bytearray:
    inner, outer = _states(key)
    icopy, ocopy = inner.copy, outer.copy
    out = bytearray()  # appended to in place: cheaper than a list of digests joined
    for n in numbers:
        i = icopy()
        i.update(n)
        o = ocopy()
        o.update(i.digest())
        out += o.digest()
    return out


def _digests_into(key: bytes, numbers: pa.Array, out: np.ndarray) -> None:
    """``digests`` of a binary array written into ``out`` (32 bytes a number), a block at a time: the numbers
    are turned into Python bytes and their digests collected only ``HASH_CHUNK`` at a time, so the memory
    held (and first touched) is ``out``, not ten million small objects."""
    for lo in range(0, len(numbers), HASH_CHUNK):
        part = numbers.slice(lo, HASH_CHUNK)
        out[lo * 32:(lo + len(part)) * 32] = np.frombuffer(_hmacs(key, part.to_pylist()), np.uint8)


_SHARED: tuple[bytes, pa.Array, np.ndarray] | None = None  # what forked workers see: key, numbers, digests


def _digests_job(span: tuple[int, int]) -> None:
    """In a forked worker: the digests of its slice of the numbers it inherited, written into the shared
    memory the parent made (nothing is sent either way but the span)."""
    assert _SHARED is not None
    key, numbers, out = _SHARED
    _digests_into(key, numbers.slice(span[0], span[1] - span[0]), out[span[0] * 32:span[1] * 32])


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
        # fork: each worker inherits the numbers and an anonymous shared mapping (MAP_SHARED) for the
        # digests, is told only its span and writes its digests in place; it makes no DuckDB call
        shared = mmap.mmap(-1, n * 32)
        out = np.frombuffer(shared, np.uint8)
        _SHARED = (key, array, out)
        try:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                list(pool.map(_digests_job, [(i, min(i + step, n)) for i in range(0, n, step)]))
        finally:
            _SHARED = None
        blob = pa.py_buffer(out)
    else:
        out = np.empty(n * 32, np.uint8)
        _digests_into(key, array, out)
        blob = pa.py_buffer(out)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), n, [None, blob])


def number_problems(numbers: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """For each card number (spaces and dashes already removed, none null): OK, NOT_DIGITS, LENGTH or LUHN."""
    return scan(numbers)[0]


def scan(numbers: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ingest's checks on a whole column at once: each number's code (as ``number_problems``) and, where the
    code is OK, its length (12 to 19) and its value as an unsigned 64-bit integer (19 digits fit); 0 and 0
    elsewhere. Two valid numbers are the same card exactly when their length and value are the same (the
    length tells "0123..." from "123..."), which lets ``distinct_rows`` find the distinct numbers by sorting
    integers.

    Luhn, vectorised: a doubled digit d adds 2d, less 9 when d >= 5, which is 2d + 1 modulo 10; so a
    number passes when (sum of all its digits + sum of its doubled digits + count of its doubled digits
    >= 5) is a multiple of 10. Each block of numbers of one length is transposed to one row per digit
    position, so every step is a plain vector operation."""
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    a = numbers.cast(pa.string())
    n = len(a)
    codes, widths, values = np.empty(n, np.int8), np.zeros(n, np.int8), np.zeros(n, np.uint64)
    if n == 0:
        return codes, widths, values
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int32, count=n + 1, offset=a.offset * 4)
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8) if a.buffers()[2] is not None else np.zeros(0, np.uint8)
    ten = np.uint64(10)
    for lo in range(0, n, CHECK_CHUNK):  # a block of numbers at a time: small temporaries, reused
        hi = min(lo + CHECK_CHUNK, n)
        bounds = offsets[lo:hi + 1].astype(np.int64)
        starts, ends = bounds[:-1], bounds[1:]
        lengths = ends - starts
        chunk = data[bounds[0]:bounds[-1]]
        not_digits = np.zeros(hi - lo, bool)
        stray = np.flatnonzero((chunk - np.uint8(48)) > 9)  # bytes that are not ASCII digits
        if len(stray):
            not_digits[np.searchsorted(bounds - bounds[0], stray, side="right") - 1] = True
        bad_length = (lengths < 12) | (lengths > 19)
        checkable = ~not_digits & ~bad_length
        bad_luhn = np.zeros(hi - lo, bool)
        for width in _widths(lengths[checkable]):  # one digit matrix per card length
            rows = np.flatnonzero((lengths == width) & checkable)
            if len(rows) == hi - lo:  # every number of the block this long: the bytes are the matrix
                m = chunk.reshape(hi - lo, width)
            else:
                m = chunk[(starts[rows] - bounds[0])[:, None] + np.arange(width)]
            d = m.T.copy(order="C")  # (position, number); a copy, always: the Arrow bytes are never changed
            d -= np.uint8(48)
            doubled = d[width - 2::-2]  # every second digit from the right
            total = d.sum(axis=0, dtype=np.uint16)
            total += doubled.sum(axis=0, dtype=np.uint16)
            total += (doubled > 4).sum(axis=0, dtype=np.uint16)
            bad_luhn[rows] = total % 10 != 0
            value = np.zeros(len(rows), np.uint64)
            for position in d:
                value *= ten
                value += position
            values[lo + rows] = value
            widths[lo + rows] = width
        code = np.select([not_digits, bad_length, bad_luhn], [NOT_DIGITS, LENGTH, LUHN], OK)
        codes[lo:hi] = code
        bad = code != OK
        values[lo:hi][bad] = 0
        widths[lo:hi][bad] = 0
    return codes, widths, values


def _widths(lengths: np.ndarray) -> list[int]:
    """The card lengths (12 to 19) present; cheaper than ``np.unique`` on many rows."""
    return [int(w) for w in np.flatnonzero(np.bincount(lengths, minlength=20)) if w] if len(lengths) else []


def distinct_rows(widths: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One position per distinct valid number (``scan``'s width and value; a width of 0 is not valid), by
    sorting integers rather than hashing strings. In order of length, then value."""
    keep: list[np.ndarray] = []
    present = _widths(widths)
    for width in present:
        if len(present) == 1 and not (widths == 0).any():  # the common case: no copy of the values
            these, v = None, values
        else:
            these = np.flatnonzero(widths == width)
            v = values[these]
        order = np.argsort(v)
        s = v[order]
        first = np.ones(len(s), bool)
        np.not_equal(s[1:], s[:-1], out=first[1:])
        order = order[first]
        keep.append(order if these is None else these[order])
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)
