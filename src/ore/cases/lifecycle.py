"""The lifecycle of a case: which step may follow which, the rules that refuse a step, and
what each step changes (milestone time, s.38 category, deadline).

The table below *is* the lifecycle: the CLI, the tests and the docs read it. A step
is recorded only if every rule allows it; a refusal names the rule and its sentence,
so the person refused knows what would make it allowed. Every step records who
(``actor``: the signed-in user; internal callers name one), when (UTC) and why, and is an
audit entry (alteration) in the same transaction. ``authorise`` checks the user's roles.

Why these rules: the original operation disseminated unconfirmed bands and arrested
people whose only link was a stolen card. A band is advisory until a supervisor
confirms it; an arrest on evidence grade C (indicators of card fraud) needs a
supervisor's named override and reason; a wrongly identified person can be
eliminated at any point before conviction, and becomes a victim (Data Protection Act
2018 s.38 category) rather than a suspect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.orm.exc import StaleDataError

from ore.errors import OreError
from ore.store.models import Case, Transition

# --- the table ---------------------------------------------------------------------------

BANDS = ("P1", "P2", "P3", "P4", "none")
ACTIONABLE_BANDS = ("P1", "P2", "P3", "P4")
S38_CATEGORIES = ("suspect", "victim", "witness", "convicted")

# Grounds for elimination and the s.38 category each leaves the person in.
ELIMINATION_GROUNDS: dict[str, str] = {
    "card_fraud_victim": "victim",  # someone else used their card: the Ore failure
    "identity_misused": "victim",  # their name or address was used without the card being theirs
    "witness": "witness",  # not the subscriber, but holds information (e.g. a household member)
}


@dataclass(frozen=True)
class Step:
    """What reaching a status means: the milestone column it stamps and the rules it must pass."""

    sentence: str
    milestone: str | None = None  # column of ``cases`` set to the step's time (first time only)
    rules: tuple[str, ...] = ()
    first_action: bool = False  # stops the deadline clock (an action on the lead after dissemination)
    category: str | None = None  # s.38 category the step sets (eliminated: from its ground)


STEPS: dict[str, Step] = {
    "identified": Step("Named by a committed triage."),
    "triaged": Step("A supervisor confirmed or changed the recommended band.", "triaged_at", ("band_given",)),
    "disseminated": Step(
        "Sent to the force that holds the person's address.", "disseminated_at",
        ("band_confirmed", "band_actionable", "force_named"),
    ),
    "accepted": Step("The force accepted the case.", "accepted_at"),
    "under_investigation": Step("The force is investigating.", "investigation_at"),
    "arrested": Step("Arrested.", "arrested_at", ("grade_c_arrest",), first_action=True),
    "interviewed": Step("Interviewed (under caution or voluntarily).", "interviewed_at", first_action=True),
    "charged": Step("Charged.", "charged_at"),
    "cautioned": Step("Cautioned.", "cautioned_at"),
    "no_further_action": Step("No further action.", "nfa_at", first_action=True),
    "released": Step("Released (on bail or under investigation) pending a decision.", "released_at"),
    "convicted": Step("Convicted.", "convicted_at", category="convicted"),
    "acquitted": Step("Acquitted.", "acquitted_at"),
    "eliminated": Step(
        "Eliminated: wrongly identified (e.g. the victim of card fraud).", "eliminated_at",
        ("ground_given",), first_action=True,
    ),
}

_OUTCOMES = ("charged", "cautioned", "no_further_action", "released", "eliminated")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "identified": ("triaged", "eliminated"),
    "triaged": ("triaged", "disseminated", "eliminated"),  # triaged again: the band changed again
    "disseminated": ("accepted", "eliminated"),
    "accepted": ("under_investigation", "eliminated"),
    "under_investigation": ("arrested", "interviewed", "no_further_action", "eliminated"),
    "arrested": ("interviewed", *_OUTCOMES),
    "interviewed": _OUTCOMES,
    "released": ("charged", "cautioned", "no_further_action", "eliminated"),
    "charged": ("convicted", "acquitted", "eliminated"),
    "cautioned": ("eliminated",),
    "no_further_action": ("eliminated",),
    "acquitted": ("eliminated",),
    "convicted": (),  # final: elimination is possible only before conviction
    "eliminated": (),
}
STATES = tuple(STEPS)


@dataclass(frozen=True)
class Rule:
    """A named rule with the sentence a refused user reads."""

    code: str
    sentence: str


RULES: dict[str, Rule] = {r.code: r for r in (
    Rule("sealed", "A sealed person accepts no transition but unsealing."),
    Rule("legal_transition", "The lifecycle allows only the steps in its table; from {status} a case may go to: "
                             "{allowed}."),
    Rule("actor_named", "Every step records who took it: give the user's name."),
    Rule("reason_given", "Every step records why: give a reason."),
    Rule("time_order", "A step cannot be recorded before the case's previous step ({last})."),
    Rule("band_given", "Triage records the band the supervisor confirms or sets: give one of P1, P2, P3, P4, none."),
    Rule("band_confirmed", "An unconfirmed band cannot be disseminated: a supervisor must confirm or change the "
                           "band first (the recommendation changed since it was confirmed, or was never confirmed)."),
    Rule("band_actionable", "A person banded none is not to be actioned as a suspect: a supervisor must set a band "
                            "P1-P4 first, or eliminate them."),
    Rule("force_named", "Dissemination names the receiving force: give a force code, or allocate the person to a "
                        "force by postcode."),
    Rule("grade_c_arrest", "An arrest cannot be recorded on evidence grade C (indicators of card fraud contradict "
                           "the person's own use) without a supervisor's override and reason."),
    Rule("ground_given", "Elimination names its ground: one of " + ", ".join(ELIMINATION_GROUNDS) + "."),
    Rule("is_sealed", "Only a sealed person can be unsealed."),
    Rule("not_sealed", "The person is already sealed."),
)}


class TransitionRefused(OreError):
    """A step a rule forbids; ``rule`` is its name, the message its sentence."""

    def __init__(self, rule: str, person: str = "", **fmt: Any) -> None:
        self.rule = rule
        sentence = RULES[rule].sentence.format(**fmt)
        who = f"{person}: " if person else ""
        super().__init__(f"{who}refused by rule {rule}: {sentence}")


def authorise(session: Session, action: str, case: Case, *, override_by: str | None = None) -> None:
    """Refuse unless the session's user may take ``action`` (a status, ``seal`` or ``unseal``) on ``case``.

    The permission comes from the roles policy (``ore/auth/roles.yaml``: ``steps``); a
    case the user may not see is refused exactly as a missing one, so that another
    force's case does not even show that it exists. An override of a rule must be a
    named, active user holding ``cases.override`` (a supervisor), not the actor.
    Internal callers (no signed-in user) are trusted: the rules above apply to them still.
    """
    from ore.auth.policy import load_policy
    from ore.auth.principal import is_system
    from ore.auth.scope import principal_of

    who = principal_of(session)
    if is_system(who):
        return
    ref = case.person.person_ref if case.person is not None else f"case {case.id}"
    hidden = (not who.all_forces and case.force_code != who.force) or (case.sealed and not who.sees_sealed)
    if hidden:
        raise OreError(f"no case for person {ref}: import the triage first (ore cases import OUTDIR)")
    need = ({"seal": "cases.seal", "unseal": "cases.unseal", "safeguard": "cases.safeguard"}.get(action)
            or load_policy().step_permission(action))
    who.require(need, f"take the step {action} on {ref}")
    if override_by:
        _check_override(session, who.username, override_by, ref)


def _check_override(session: Session, actor: str, override_by: str, ref: str) -> None:
    from sqlalchemy import select

    from ore.auth.principal import principal_for
    from ore.store.access import User

    if override_by == actor:
        raise OreError(f"{ref}: an override is a second person's decision: {actor} cannot override for themself")
    user = session.scalar(select(User).where(User.username == override_by))
    if user is None or user.disabled:
        raise OreError(f"{ref}: the override must name an active user; {override_by!r} is not one")
    if not principal_for(user.username, user.roles.split(), user.force_code).can("cases.override"):
        raise OreError(f"{ref}: {override_by} may not authorise overrides (it needs the permission cases.override)")


# --- requests and their application ----------------------------------------------------------


@dataclass
class Request:
    """One step asked for: the status to reach, who asks, why, and what the step needs."""

    to: str
    by: str
    reason: str
    at: datetime | None = None
    band: str | None = None  # triaged: the band confirmed or set
    force: str | None = None  # disseminated: the receiving force (default: the person's allocated force)
    override_by: str | None = None  # a supervisor allowing what a rule would refuse (grade C arrest)
    override_reason: str | None = None
    ground: str | None = None  # eliminated: one of ELIMINATION_GROUNDS
    extra: dict[str, Any] = field(default_factory=dict)


def _default_deadlines() -> dict[str, timedelta]:
    from ore.cases.deadlines import policy_deadlines

    return policy_deadlines()


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def check(case: Case, req: Request, at: datetime) -> str | None:
    """Refuse ``req`` with the first rule that forbids it; return the rule overridden, if any."""
    ref = case.person.person_ref if case.person is not None else f"case {case.id}"
    if case.sealed:
        raise TransitionRefused("sealed", ref)
    if not (req.by or "").strip():
        raise TransitionRefused("actor_named", ref)
    if not (req.reason or "").strip():
        raise TransitionRefused("reason_given", ref)
    allowed = TRANSITIONS.get(case.status, ())
    if req.to not in allowed:
        raise TransitionRefused("legal_transition", ref, status=case.status,
                                allowed=", ".join(allowed) or "nothing (final)")
    if case.event_count and at < case.updated_at:
        raise TransitionRefused("time_order", ref, last=case.updated_at.isoformat(timespec="seconds"))
    overridden = None
    for rule in STEPS[req.to].rules:
        if rule == "band_given" and req.band not in BANDS:
            raise TransitionRefused(rule, ref)
        if rule == "band_confirmed" and not (case.band_confirmed and case.band):
            raise TransitionRefused(rule, ref)
        if rule == "band_actionable" and case.band not in ACTIONABLE_BANDS:
            raise TransitionRefused(rule, ref)
        if rule == "force_named" and not (req.force or case.person.force_code):
            raise TransitionRefused(rule, ref)
        if rule == "grade_c_arrest" and case.person.evidence_grade == "C":
            if not ((req.override_by or "").strip() and (req.override_reason or "").strip()):
                raise TransitionRefused(rule, ref)
            overridden = rule
        if rule == "ground_given" and (req.ground or "card_fraud_victim") not in ELIMINATION_GROUNDS:
            raise TransitionRefused(rule, ref)
    return overridden


def _apply(case: Case, req: Request, at: datetime, overridden: str | None,
           deadlines: Mapping[str, timedelta]) -> list[dict[str, Any]]:
    """Change ``case`` in memory for an allowed step; return the transition rows to insert.

    Elimination also seals the person (a second row, ``seal``): they were wrongly
    identified, so only auditors and admins see them from now on.
    """
    step = STEPS[req.to]
    before_status, before_category = case.status, case.s38_category
    case.status = req.to
    if step.milestone and getattr(case, step.milestone) is None:
        setattr(case, step.milestone, at)
    if step.first_action and case.disseminated_at is not None and case.first_action_at is None:
        case.first_action_at = at
    force = None
    if req.to == "triaged":
        case.band = req.band
        case.band_confirmed = True
    elif req.to == "disseminated":
        force = req.force or case.person.force_code
        case.force_code = force
        case.disseminated_at = at  # a re-dissemination restarts the clock
        case.due_at = at + deadlines[case.band] if case.band in deadlines else None
    elif req.to == "eliminated":
        ground = req.ground or "card_fraud_victim"
        case.elimination_ground = ground
        case.s38_category = ELIMINATION_GROUNDS[ground]
        case.sealed = True  # a wrongly identified person leaves every list, queue and export
    if step.category:
        case.s38_category = step.category
    case.event_count += 1
    case.updated_at = at
    rows = [{
        "case_id": case.id, "seq": case.event_count, "action": "transition", "from_status": before_status,
        "to_status": req.to, "actor": req.by.strip(), "at": at, "reason": req.reason.strip(),
        "band": req.band if req.to == "triaged" else None, "force_code": force,
        "override_by": req.override_by if overridden else None,
        "override_reason": req.override_reason if overridden else None, "overridden_rule": overridden,
        "category_before": before_category, "category_after": case.s38_category,
    }]
    if req.to == "eliminated":
        case.event_count += 1
        rows.append({"case_id": case.id, "seq": case.event_count, "action": "seal", "from_status": req.to,
                     "to_status": req.to, "actor": req.by.strip(), "at": at,
                     "reason": "Sealed on elimination: the person was wrongly identified.", "band": None,
                     "force_code": None, "override_by": None, "override_reason": None, "overridden_rule": None,
                     "category_before": case.s38_category, "category_after": case.s38_category})
    return rows


# The columns a step may change; written by ``transition_many`` in one versioned executemany.
LIFECYCLE_COLUMNS = (
    "status", "s38_category", "band", "band_confirmed", "force_code", "elimination_ground", "event_count", "sealed",
    "updated_at", "due_at", "first_action_at", *sorted({s.milestone for s in STEPS.values() if s.milestone}),
)


def _write_cases(session: Session, cases: dict[int, Case], versions: dict[int, int]) -> None:
    """UPDATE each changed case only if its version is still the one read: optimistic locking, in bulk.

    The ORM's own flush checks the version row by row (one statement per case); a bulk
    step changes thousands of cases, so this issues one executemany with the same check
    and then tells the ORM the objects are clean at their new version.
    """
    if not cases:
        return
    table = Case.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_version"))
        .values({**{c: bindparam(c) for c in LIFECYCLE_COLUMNS}, "version": bindparam("_next")})
    )
    params = [{"_id": cid, "_version": versions[cid], "_next": versions[cid] + 1,
               **{c: getattr(case, c) for c in LIFECYCLE_COLUMNS}} for cid, case in sorted(cases.items())]
    # (in id order: two bulk steps over overlapping cases lock their rows in one order, so neither deadlocks)
    result = session.execute(stmt, params)
    if result.rowcount != len(params):
        raise StaleDataError(
            f"{len(params) - result.rowcount} of {len(params)} case(s) were changed by someone else since read"
        )
    states = []
    for cid, case in cases.items():
        set_committed_value(case, "version", versions[cid] + 1)
        state = inspect(case)
        states.append((state, state.dict))
    # The rows now hold what the objects hold: mark them clean, so no later flush writes them again.
    # This is what a flush does after its own UPDATEs (SQLAlchemy's InstanceState._commit_all_states).
    InstanceState._commit_all_states(states, session.identity_map)


def transition_many(
    session: Session, steps: Iterable[tuple[Case, Request]], *, deadlines: Mapping[str, timedelta] | None = None,
) -> int:
    """Take many steps in one unit of work: one versioned UPDATE of the cases, one insert of transitions.

    Steps are checked and applied in order, so one case may take several. The first
    refusal raises and nothing of this call is kept once the session rolls back. A case
    changed by someone else since it was read raises ``StaleDataError`` (``CaseConflict``
    from ``Store.session``).
    """
    from ore.audit.chain import record_for
    from ore.auth.principal import is_system
    from ore.auth.scope import principal_of, sealing

    dl = deadlines if deadlines is not None else _default_deadlines()
    who = principal_of(session)
    session.flush()  # anything pending goes first, under the ORM's own version check
    rows: list[dict[str, Any]] = []
    touched: dict[int, Case] = {}
    versions: dict[int, int] = {}
    # No autoflush from here: the ORM must not write the changed cases itself (it would bump
    # their versions under us); _write_cases writes them, version-checked.
    with session.no_autoflush:
        for case, req in steps:
            at = _aware(req.at)
            if not is_system(who):
                req.by = who.username  # the signed-in user, whatever name the caller passed
            authorise(session, req.to, case, override_by=req.override_by)
            overridden = check(case, req, at)
            if case.id not in touched:
                touched[case.id] = case
                versions[case.id] = case.version
            rows.extend(_apply(case, req, at, overridden, dl))
        if any(r["action"] == "seal" for r in rows):
            sealing(session)
        _write_cases(session, touched, versions)
    if rows:
        # Core executemany: the ORM's bulk insert would split rows whose None columns differ into
        # single statements, and a bulk step writes tens of thousands of them.
        session.execute(insert(Transition.__table__), rows)
        steps_to = sorted({r["to_status"] for r in rows if r["action"] == "transition"})
        refs = sorted({c.person.person_ref for c in touched.values()})
        record_for(session, action="cases.transition", category="alteration", objects=refs, user=rows[0]["actor"],
                   default_purpose="supervision" if set(steps_to) <= {"triaged", "disseminated"} else "investigation",
                   detail={"steps": sum(r["action"] == "transition" for r in rows), "to": steps_to,
                           "overrides": sorted({r["overridden_rule"] for r in rows if r.get("overridden_rule")})})
    return sum(r["action"] == "transition" for r in rows)


def transition(session: Session, case: Case, to: str, *, by: str, reason: str, at: datetime | None = None,
               deadlines: Mapping[str, timedelta] | None = None, **kw: Any) -> None:
    """Take one step (see ``Request`` for the options each step needs)."""
    transition_many(session, [(case, Request(to=to, by=by, reason=reason, at=at, **kw))], deadlines=deadlines)


def _seal_step(session: Session, case: Case, *, seal: bool, by: str, reason: str, at: datetime | None) -> None:
    from ore.audit.chain import record_for
    from ore.auth.principal import is_system
    from ore.auth.scope import principal_of, sealing

    ref = case.person.person_ref
    when = _aware(at)
    who = principal_of(session)
    if not is_system(who):
        by = who.username
        authorise(session, "seal" if seal else "unseal", case)  # before the rules: a hidden case is missing
    if seal and case.sealed:
        raise TransitionRefused("not_sealed", ref)
    if not seal and not case.sealed:
        raise TransitionRefused("is_sealed", ref)
    if not (by or "").strip():
        raise TransitionRefused("actor_named", ref)
    if not (reason or "").strip():
        raise TransitionRefused("reason_given", ref)
    if seal:
        sealing(session)
    case.sealed = seal
    case.event_count += 1
    case.updated_at = max(when, case.updated_at)
    session.flush()
    session.execute(insert(Transition.__table__), [{
        "case_id": case.id, "seq": case.event_count, "action": "seal" if seal else "unseal",
        "from_status": case.status, "to_status": case.status, "actor": by.strip(), "at": when,
        "reason": reason.strip(), "category_before": case.s38_category, "category_after": case.s38_category,
    }])
    record_for(session, action="cases.seal" if seal else "cases.unseal", category="alteration",
               objects=[ref], user=by.strip(), default_purpose="supervision", detail={"reason": reason.strip()})


def seal(session: Session, case: Case, *, by: str, reason: str, at: datetime | None = None) -> None:
    """Seal a person: no step is accepted until they are unsealed, and only auditors and admins see them."""
    _seal_step(session, case, seal=True, by=by, reason=reason, at=at)


def unseal(session: Session, case: Case, *, by: str, reason: str, at: datetime | None = None) -> None:
    _seal_step(session, case, seal=False, by=by, reason=reason, at=at)


def legal_category(case: Case) -> bool:
    """The s.38 category the lifecycle implies for the case's status (used by tests and checks)."""
    if case.status == "convicted":
        return case.s38_category == "convicted"
    if case.status == "eliminated":
        return case.s38_category == ELIMINATION_GROUNDS.get(case.elimination_ground or "", "?")
    return case.s38_category == "suspect"
