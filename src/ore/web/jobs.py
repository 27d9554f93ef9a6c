"""Triage of an uploaded package as a background job, with progress a page can poll.

The job does what ``ore triage PACKAGE --out OUT --commit`` does: ``ore.pipeline.triage``
(ingest, resolve, corroborate, assess, allocate, report), the same audit entries as the
command (ingest: collection; triage: combination) and ``ore.cases.import_triage`` under
the user who started it, so the results land in the queue. One thread per job; the
workspace lock already makes a second triage wait for the first.
"""

from __future__ import annotations

import shutil
import threading
import traceback
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ore.auth.principal import Principal
from ore.errors import OreError
from ore.store import Store
from ore.workspace import Workspace


@dataclass
class Job:
    id: str
    owner: str
    package_name: str
    state: str = "queued"  # queued | running | done | failed
    step: str = ""
    progress: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    package_id: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    bands: dict[str, int] = field(default_factory=dict)
    allocation: dict[str, int] = field(default_factory=dict)
    imported: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "owner": self.owner, "package": self.package_name, "state": self.state,
                "step": self.step, "progress": {k: {"done": d, "total": t} for k, (d, t) in self.progress.items()},
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "finished_at": self.finished_at.isoformat(timespec="seconds") if self.finished_at else None,
                "package_id": self.package_id, "files": self.files, "bands": self.bands,
                "allocation": self.allocation, "imported": self.imported, "error": self.error}


def safe_extract(archive: Path, dest: Path, max_entries: int = 10_000) -> Path:
    """Unzip refusing absolute paths, ``..`` and links; return the folder holding the files."""
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        if len(names) > max_entries:
            raise OreError(f"{archive.name}: more than {max_entries} entries")
        for info in z.infolist():
            p = Path(info.filename)
            if p.is_absolute() or ".." in p.parts or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise OreError(f"{archive.name}: refused entry {info.filename!r}")
        z.extractall(dest)
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


class Jobs:
    """The jobs of this server process (they do not outlive it: the triage output and audit entries do)."""

    def __init__(self, ws: Workspace, store: Store, reference: Path | None = None,
                 postcodes: Path | None = None) -> None:
        self.ws, self.store, self.reference, self.postcodes = ws, store, reference, postcodes
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str, who: Principal) -> Job:
        """A job its owner (or a user holding cases.import) may see; another's answers as missing."""
        job = self._jobs.get(job_id)
        if job is None or not (job.owner == who.username or who.can("cases.import")):
            raise OreError(f"no import job {job_id}")
        return job

    def list(self, who: Principal) -> list[Job]:
        return sorted((j for j in self._jobs.values() if j.owner == who.username or who.can("cases.import")),
                      key=lambda j: j.started_at, reverse=True)

    def start(self, who: Principal, package: Path, *, mapping: Path | None = None,
              reference: Path | None = None, package_name: str = "", job_id: str | None = None) -> Job:
        who.require("cases.import", "import and triage a package")
        job = Job(job_id or uuid.uuid4().hex[:12], who.username, package_name or package.name)
        with self._lock:
            self._jobs[job.id] = job
        t = threading.Thread(target=self._run, args=(job, who, package, mapping, reference or self.reference),
                             name=f"ore-triage-{job.id}", daemon=True)
        t.start()
        return job

    def _run(self, job: Job, who: Principal, package: Path, mapping: Path | None, reference: Path | None) -> None:
        from ore.audit import record
        from ore.cases import import_triage
        from ore.ingest.mapping import load_mapping
        from ore.pipeline import triage

        job.state = "running"
        out = self.ws.root / "triage" / job.id
        try:
            mapper = load_mapping(mapping) if mapping else None
            mapping_text = mapping.read_text(encoding="utf-8") if mapping else None

            def progress(label: str, done: int, total: int | None) -> None:
                job.progress[label] = (done, total)

            def step(name: str) -> None:
                job.step = name

            summary = triage(self.ws, package, out, reference=reference, postcodes=self.postcodes, mapping=mapper,
                             mapping_text=mapping_text, progress=progress, step=step)
            job.package_id = summary.package_id
            job.files = [{"file": f.file, "rows_read": f.rows_read, "accepted": f.accepted,
                          "quarantined": f.quarantined, "warnings": f.warnings} for f in summary.ingest.files]
            job.bands, job.allocation = dict(summary.bands), dict(summary.allocation)
            with self.store.session(who) as s:
                if summary.ingest.status != "already ingested":
                    record(s, user=who.username, action="ingest", category="collection",
                           objects=[summary.package_id], purpose="triage",
                           detail={"status": summary.ingest.status, "via": "web",
                                   "accepted": sum(f.accepted for f in summary.ingest.files),
                                   "quarantined": sum(f.quarantined for f in summary.ingest.files)})
                record(s, user=who.username, action="triage", category="combination", objects=[summary.package_id],
                       purpose="triage", detail={"bands": summary.bands, "allocation": summary.allocation,
                                                 "out": str(out), "via": "web", "signed_in": True})
            job.step = "import"
            result = import_triage(self.store, self.ws, out, package_id=summary.package_id, principal=who,
                                   purpose="triage")
            job.imported = result.as_dict()
            job.state = "done"
        except OreError as e:
            job.state, job.error = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - a job reports its failure; the server goes on
            job.state, job.error = "failed", f"{type(e).__name__}: {e}"
            traceback.print_exc()
        finally:
            job.finished_at = datetime.now(UTC)
            shutil.rmtree(self.ws.root / "uploads" / job.id, ignore_errors=True)
