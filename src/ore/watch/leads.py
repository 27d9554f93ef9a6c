"""New leads from a feed: purchases from flagged merchants or products, as a lead package triage ingests.

The package follows ``shared/spec/lead-package.md``: ``manifest.json`` and ``leads.csv`` in a
directory named by its package id (``WATCH-`` and the feed hash's first twelve hex digits),
so ``ore triage DIR`` or ``ore ingest DIR`` reads it like any package, and re-ingesting it
is a no-op. The leads carry no case or watch information: a lead is a new allegation
about a card, judged by triage on its own evidence, whoever it later turns out to be.

- ``record_id`` is the package id and the feed line; ``product_category`` is what the
  packages in the store called the product (``abuse``, ``adult``), else ``unknown``;
  status is left blank (a feed does not say).
- ``card_number`` is the clear number from a raw feed: the package is an input to be
  ingested (which tokenises it) and is written with mode 0600. From a pre-tokenised feed
  there is no number: the token goes in the extra column ``card_token`` and ingest
  quarantines the row (``card_number is missing``) until the sender supplies it.
- Extra columns ``feed``, ``feed_line`` and ``watch_flag`` say where each lead came from.

The directory is written whole under a temporary name and renamed into place, so a
crash leaves either the complete package or none; writing it again gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ore.report.safecsv import csv_text

HEADER = ("record_id", "transaction_id", "transaction_time", "merchant", "product", "product_category", "amount",
          "currency", "status", "card_number", "email", "username", "ip_address", "card_token", "feed", "feed_line",
          "watch_flag")


def package_id(feed_sha256: str) -> str:
    return f"WATCH-{feed_sha256[:12].upper()}"


def lead_row(pkg: str, feed_name: str, row: dict[str, Any], category: str, flag_shown: str,
             raw_numbers: bool) -> list[Any]:
    t = row["transaction_time"]
    return [
        f"{pkg}-{row['line']}", row["transaction_id"], t.strftime("%Y-%m-%dT%H:%M:%S") if t else "",
        row["merchant"], row["product"], category, "" if row["amount"] is None else repr(float(row["amount"])),
        row["currency"], "", row["card_digits"] if raw_numbers else "", row["email"], row["username"],
        row["ip_address"], "" if raw_numbers else row["card_token"], feed_name, row["line"], flag_shown,
    ]


def write_package(out: Path, pkg: str, rows: Sequence[Sequence[Any]], *, operation: str, source: str,
                  received: datetime | None = None) -> Path:
    """Write the lead package ``out/pkg`` atomically; return its directory."""
    text, n = csv_text(HEADER, rows)
    data = text.encode("utf-8")
    manifest = {
        "format": "ore-lead-package", "version": 1, "package_id": pkg, "operation": operation, "source": source,
        "received": (received or datetime.now(UTC)).date().isoformat(), "jurisdiction": "GB",
        "files": {"leads.csv": {"sha256": hashlib.sha256(data).hexdigest(), "rows": n}},
    }
    out.mkdir(parents=True, exist_ok=True)
    final = out / pkg
    tmp = Path(tempfile.mkdtemp(prefix=f".{pkg}-", dir=out))
    try:
        for name, content in (("leads.csv", data), ("manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())):
            fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # clear card numbers inside
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        if final.exists():  # a run that died before committing wrote it: replace it with this one
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
