"""Writing the scenario's files: CSV as the spec wants it (UTF-8, RFC 4180, minimal quoting)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv


def write_columns(path: Path, columns: Mapping[str, np.ndarray | Sequence[str]]) -> int:
    """Write a table of string columns fast (pyarrow); returns the data-row count."""
    arrays = {
        k: pa.array(
            np.asarray(v, dtype=object) if not isinstance(v, np.ndarray) or v.dtype.kind != "U" else v,
            type=pa.string(),
        )
        for k, v in columns.items()
        if not k.startswith("_")
    }
    table = pa.table(arrays)
    if any(pc.any(pc.match_substring_regex(col, r'[,"\r\n]')).as_py() for col in table.columns):
        # a value that needs quoting: take the careful path
        return write_rows(path, table.column_names, zip(*(c.to_pylist() for c in table.columns), strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        if table.num_rows:
            pacsv.write_csv(
                table, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
            )
    return table.num_rows


def write_rows(path: Path, header: list[str], rows: Iterable[Sequence[str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(r)
            n += 1
    return n


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(package: Path, meta: dict[str, str], rows: dict[str, int]) -> Path:
    files = {name: {"sha256": sha256(package / name), "rows": n} for name, n in rows.items()}
    manifest = {"format": "ore-lead-package", "version": 1, **meta, "files": files}
    path = package / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path
