"""Recording an export as a disclosure: who received which persons' data, for the audit log.

The export itself is written elsewhere (``ore.report.ftm``); this records, in the same
transaction, one audit entry (category disclosure, with the recipient) and a
``disclosures`` row per person exported (the operation's unsealed, current persons, the
same set the export selects), so that if a person is later eliminated the recipient is
found and told (``ore notify-recipients``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ore.audit.chain import record_for
from ore.cases.queries import case_query
from ore.store.access import Disclosure
from ore.store.models import Case, Operation, Person


def record_export(session: Session, operation: str, recipient: str, where: str, counts: dict[str, int],
                  approval: int | None = None) -> int:
    """Log the export of ``operation`` to ``recipient``; returns the number of persons disclosed."""
    now = datetime.now(UTC)
    cases = list(session.scalars(case_query(session).join(Operation, Operation.id == Case.operation_id)
                                 .where(Operation.name == operation, Case.sealed.is_(False),
                                        Person.withdrawn_at.is_(None))))
    entry = record_for(session, action="export", category="disclosure", default_purpose="disclosure",
                       objects=[c.person.person_ref for c in cases],
                       detail={"recipients": [recipient], "operation": operation, "file": where, "counts": counts,
                               "approval": approval})
    if cases:
        session.execute(insert(Disclosure.__table__), [
            {"audit_seq": entry.seq, "person_id": c.person_id, "person_ref": c.person.person_ref,
             "package_ref": c.person.package.package_ref, "recipient": recipient, "kind": "export", "at": now}
            for c in cases])
    return len(cases)
