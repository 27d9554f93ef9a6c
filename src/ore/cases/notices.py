"""Telling recipients that a person they received was eliminated (``ore notify-recipients``).

The recipients come from the disclosure log (``disclosures``: every dissemination and
export, per person). A notice names the person reference, the package, when and how the
data was sent, and asks the recipient to mark the person as a victim of card fraud (or
as eliminated on the recorded ground) and to restrict or erase what they hold. It carries
no further personal data: the recipient already holds it. Producing notices is a
disclosure, logged with the recipients.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.auth.scope import principal_of
from ore.cases.queries import find_case
from ore.store.access import Disclosure


def notify_recipients(session: Session, person_ref: str, out: Path, package: str | None = None) -> dict[str, Path]:
    """Write one notice per recipient of ``person_ref`` into ``out``; returns recipient -> file."""
    principal_of(session).require("cases.notify", "notify recipients")
    case = find_case(session, person_ref, package)
    sent = list(session.scalars(select(Disclosure).where(Disclosure.person_id == case.person_id)
                                .order_by(Disclosure.at, Disclosure.id)))
    by_recipient: dict[str, list[Disclosure]] = defaultdict(list)
    for d in sent:
        by_recipient[d.recipient].append(d)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    status = "eliminated" if case.status == "eliminated" else f"{case.status}{' and sealed' if case.sealed else ''}"
    ground = (case.elimination_ground or "").replace("_", " ")
    files = {}
    for recipient, items in sorted(by_recipient.items()):
        lines = [f"To: {recipient}", f"Re: person {person_ref} (package {items[0].package_ref})", "",
                 f"The national unit has {status} this person" + (f" (ground: {ground})." if ground else "."),
                 "You received their data as follows:"]
        lines += [f"  - {d.at:%Y-%m-%d %H:%M} UTC, {d.kind} (audit entry {d.audit_seq})" for d in items]
        lines += ["", "Please record the person accordingly (a victim, not a suspect, where the ground is card "
                      "fraud or misused identity), stop any action against them, and restrict or erase the data "
                      "you hold under your retention rules. Reply to confirm.", ""]
        path = out / f"notice-{re.sub(r'[^A-Za-z0-9]+', '-', recipient).strip('-')}-{person_ref}.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        files[recipient] = path
    record_for(session, action="notify-recipients", category="disclosure", default_purpose="disclosure",
               objects=[person_ref], detail={"recipients": sorted(files), "status": case.status})
    return files
