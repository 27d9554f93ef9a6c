"""Lead rows and access-log spans: the shared vocabulary of genuine buyers and fraudsters."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEAD_COLUMNS = [
    "record_id",
    "transaction_id",
    "transaction_time",
    "merchant",
    "product",
    "product_category",
    "amount",
    "currency",
    "status",
    "card_number",
    "card_expiry",
    "cardholder_name",
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "username",
    "address_line1",
    "address_line2",
    "town",
    "postcode",
    "country",
    "ip_address",
    "ip_country",
    "phone",
]
DAY = 86_400
MONTH = 30 * DAY


def iso_time(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


@dataclass
class Row:
    """One lead row (as written) with its truth and time (for ordering)."""

    values: dict[str, str]
    t: int
    label: str  # genuine | stolen | malformed
    person: str
    actor: str = ""
    category: str = ""


@dataclass
class Spans:
    """Periods in which an account visits a site from an IP, at a rate per 30 days."""

    username: list[str] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    ip: list[str] = field(default_factory=list)
    product: list[str] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)

    def add(self, username: str, start: int, end: int, ip: str, product: str, rate: float) -> None:
        if rate > 0 and end > start:
            self.username.append(username)
            self.start.append(start)
            self.end.append(end)
            self.ip.append(ip)
            self.product.append(product)
            self.rate.append(rate)

    def visits(self, rng: np.random.Generator, until: int) -> dict[str, np.ndarray]:
        """The access log, sorted by time (vectorised: hundreds of thousands of spans are fine)."""
        start = np.asarray(self.start, dtype=np.int64)
        end = np.minimum(np.asarray(self.end, dtype=np.int64), until)
        ok = end > start
        length = np.where(ok, end - start, 0)
        counts = rng.poisson(np.asarray(self.rate) * length / MONTH)
        idx = np.repeat(np.arange(len(start)), counts)
        t = start[idx] + (rng.random(len(idx)) * length[idx]).astype(np.int64)
        order = np.lexsort((idx, t))
        idx, t = idx[order], t[order]
        return {
            "username": np.asarray(self.username, dtype=object)[idx]
            if len(idx)
            else np.asarray([], dtype=object),
            "visit_time": (t.astype("datetime64[s]")).astype(str),
            "ip_address": np.asarray(self.ip, dtype=object)[idx]
            if len(idx)
            else np.asarray([], dtype=object),
            "product": np.asarray(self.product, dtype=object)[idx]
            if len(idx)
            else np.asarray([], dtype=object),
        }


class IPs:
    """IPv4 addresses in a country's ISP blocks, each handed out once (no accidental sharing)."""

    def __init__(self, blocks: dict[str, list[str]]) -> None:
        self.blocks = blocks
        self.used: set[str] = set()

    def new(self, rng: random.Random, country: str, near: str | None = None) -> str:
        """A fresh address in the country's blocks, or in the block of ``near`` (a dynamic IP changing)."""
        while True:
            if near is not None:
                a, b, _, _ = near.split(".")
                ip = f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            else:
                ip = f"{rng.choice(self.blocks[country])}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            if ip not in self.used:
                self.used.add(ip)
                return ip


def weighted(rng: random.Random, dist: dict) -> Any:
    """One value of a {value: weight} mapping."""
    keys = list(dist)
    return rng.choices(keys, weights=[float(v) for v in dist.values()])[0]
