"""Card fraud: actors who bill stolen cards, each with a tactic, and the traces they leave.

Tactics (``style`` in truth/actors.csv):
- ``carder``: one email and account across many stolen cards, victims' own names typed;
- ``fake_name``: names typed unlike the cardholder's, a few email variants;
- ``merchant_fraud``: a webmaster billing harvested cards to his own site in bursts, no visits;
- ``identity_theft`` (hard): victims' full identities, a fresh plausible email per card;
- ``proxy`` (hard): orders relayed through proxies in Britain, so ip_country is GB.
Carders probe with declined attempts before an approval; victims dispute (chargeback); issuers
report some cards before the fraud and more after it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from ore.synth.buyers import Context, base_values, card_style, pid, zulu
from ore.synth.cards import typed
from ore.synth.config import Settings, load_data, words
from ore.synth.noise import Typist, email_local, typo
from ore.synth.orders import DAY, MONTH, Row, iso_time, weighted

HARD = ("identity_theft", "proxy")


@dataclass
class Actor:
    actor: str
    style: str
    country: str
    emails: list[str] = field(default_factory=list)


@dataclass
class FraudResult:
    rows: list[Row]
    actors: list[Actor]
    alerts: list[tuple[str, str, str]]  # card_number, reported_on (epoch s), alert_type
    victims: list[int]


def plan_actors(rng: random.Random, settings: Settings, target_records: int) -> list[tuple[str, int]]:
    """(style, record budget) per actor: each active tactic at least once, then by weight."""
    fraud = settings["fraud"]
    hard_mult = settings.rates["hard_fraud"]
    weights = {}
    for style, (w, _lo, _hi, hard) in fraud["tactics"].items():
        weights[style] = float(w) * (hard_mult if hard else 1.0)
    active = [s for s, w in weights.items() if w > 0]
    plan: list[tuple[str, int]] = []
    total = 0
    for style in active + [None] * 10_000:
        if style is None:
            if total >= target_records:
                break
            style = rng.choices(active, weights=[weights[s] for s in active])[0]
        _, lo, hi, _ = fraud["tactics"][style]
        budget = rng.randint(int(lo), int(hi))
        budget = min(budget, max(4, target_records // len(active)))  # small worlds: small actors
        plan.append((style, budget))
        total += budget
    return plan


def choose_victims(
    rng: random.Random,
    nrng: np.random.Generator,
    settings: Settings,
    needed: int,
    pool: np.ndarray,
    subscribers: np.ndarray,
    registered: np.ndarray,
) -> list[int]:
    """Cardholders in order of use: non-buyers; in hard worlds now and then a subscriber's card,
    or the card of someone on the register (a victim all the same)."""
    drawn = nrng.choice(pool, min(len(pool), needed), replace=False).tolist()
    subs = nrng.permutation(subscribers).tolist()
    regs = nrng.permutation(registered).tolist()
    p_sub, p_reg = settings.rates["subscriber_victim"], settings.rates["victim_on_register"]
    victims: list[int] = []
    for v in drawn:
        r = rng.random()
        if r < p_sub and subs:
            victims.append(subs.pop())
        elif r < p_sub + p_reg and regs:
            victims.append(regs.pop())
        else:
            victims.append(v)
    return victims


class ActorRun:
    """One actor at work: its mailboxes, connections and time window, card after card."""

    def __init__(self, ctx: Context, rng: random.Random, aid: str, style: str) -> None:
        self.ctx, self.rng, self.style = ctx, rng, style
        settings = ctx.settings
        self.rates = settings.rates
        self.fraud = settings["fraud"]
        names = load_data("names")
        self.alias_first, self.alias_last = words(names["alias_first"]), words(names["alias_last"])
        country = str(weighted(rng, self.fraud["actor_countries"]))
        if style == "proxy" and country == "GB":
            country = "RU"
        self.actor = Actor(aid, style, country)
        handle = f"{rng.choice(self.fraud['email_stems'])}{rng.randrange(100, 9999)}"
        self.w0 = ctx.start + rng.randrange(0, ctx.end - ctx.start - 40 * DAY)
        self.window = DAY * (rng.randint(8, 25) if style != "merchant_fraud" else 1)
        self.ip_country = "GB" if style == "proxy" else country
        n_ips = (
            1 if style == "merchant_fraud" else rng.randint(3, 8) if style == "proxy" else rng.randint(1, 3)
        )
        self.pool = [ctx.ips.new(rng, self.ip_country) for _ in range(n_ips)]
        domains = self.fraud["email_domains"]
        if style in ("carder", "fake_name", "merchant_fraud"):
            self.actor.emails.append(ctx.claim(rng, aid, f"{handle}@{rng.choice(domains)}", handle)[0])
        if style == "fake_name":
            for _ in range(rng.randint(0, 3)):
                variant = f"{handle}{rng.randrange(1, 99)}"
                self.actor.emails.append(ctx.claim(rng, aid, f"{variant}@{rng.choice(domains)}", variant)[0])
        if style == "merchant_fraud":
            self.site = rng.choice(settings["products"]["merchant_fraud_sites"])
            self.burst_hours = rng.randint(2, 4)
            n_bursts = rng.randint(1, max(1, int(self.rates["merchant_bursts"])))
            self.bursts = [self.w0 + k * rng.randint(2, 12) * DAY for k in range(n_bursts)]
        self.typist = Typist(rng, {**self.rates, "initial": self.rates["initial"] * 2})
        self.email = self.user = ""
        self.cards_done = 0

    def account(self, v: int) -> None:
        """The mailbox and site account this card is billed under."""
        ctx, rng, style, aid = self.ctx, self.rng, self.style, self.actor.actor
        uk_domains = ctx.settings["population"]["email_domains"]
        if style == "merchant_fraud":
            local = f"member{rng.randrange(10000, 99999)}"
            domain = rng.choice(ctx.settings["package"]["member_email_domains"])
            self.email, self.user = ctx.claim(rng, aid, f"{local}@{domain}", local)
        elif style in ("carder", "fake_name"):
            self.email = self.actor.emails[0] if style == "carder" else rng.choice(self.actor.emails)
            self.user = self.email.split("@")[0]
        elif style == "identity_theft":  # a fresh, plausible mailbox in the victim's name
            local = email_local(rng, ctx.pop.first_name(v), ctx.pop.last_name(v), int(ctx.pop.dob_iso(v)[:4]))
            self.email, self.user = ctx.claim(rng, aid, f"{local}@{weighted(rng, uk_domains)}", local[:12])
            self.actor.emails.append(self.email)
        elif style == "proxy" and (self.cards_done % rng.randint(3, 5) == 0 or not self.email):
            first, last = rng.choice(self.alias_first), rng.choice(self.alias_last)
            local = email_local(rng, first, last, rng.randint(1950, 1985))
            self.email, self.user = ctx.claim(rng, aid, f"{local}@{weighted(rng, uk_domains)}", local[:12])
            self.actor.emails.append(self.email)
        self.cards_done += 1

    def names(self, v: int) -> tuple[str, str, str, str]:
        """first and last name typed, the cardholder name, the date of birth given."""
        rng, style, pop = self.rng, self.style, self.ctx.pop
        first_f, last_f = pop.first_name(v), pop.last_name(v)
        if style == "fake_name":
            first, last = rng.choice(self.alias_first), rng.choice(self.alias_last)
        elif style == "identity_theft":  # a full identity is copied, not typed
            first, last = first_f, last_f
        else:
            first, last = self.typist.first(first_f), self.typist.last(last_f)
        holder = f"{first_f} {last_f}".upper()
        if style != "identity_theft" and rng.random() < self.rates["typo"]:
            holder = typo(rng, holder)
        dob = pop.dob_iso(v) if style == "identity_theft" and rng.random() < 0.5 else ""
        return first, last, holder, dob

    def product(self) -> tuple[dict, str]:
        rng, products = self.rng, self.ctx.settings["products"]
        if self.style == "merchant_fraud":
            return {"code": self.site, "price": rng.choice(products["abuse"])["price"]}, "abuse"
        if rng.random() < self.rates["fraud_adult"]:  # an age-verification pass to resell
            return rng.choice(products["adult"]), "adult"
        return rng.choice(products["abuse"]), "abuse"

    def attempts(self) -> list[tuple[str, int]]:
        """(status, time) of each attempt on one card: probes, an approval and rebills, or a dead card."""
        rng, style, fraud = self.rng, self.style, self.fraud
        if style == "merchant_fraud":
            return [("approved", rng.choice(self.bursts) + rng.randrange(0, self.burst_hours * 3600))]
        t = self.w0 + rng.randrange(0, self.window)
        lo, hi = fraud["probe_declines"]
        probes = rng.randint(int(lo), int(hi))
        rebills = int(weighted(rng, fraud["rebills"]))
        if style == "identity_theft":
            probes, rebills = min(probes, 1), min(rebills + 1, 4)
        out = [("declined", t + k * rng.randint(60, 900)) for k in range(probes)]
        t_next = t + probes * 900 + rng.randint(60, 900)
        if style in ("carder", "fake_name", "proxy") and rng.random() < float(fraud["dead_card"]):
            return [*out, ("declined", t_next)]  # a dead card: given up
        out.append(("approved", t_next))
        return out + [
            ("approved", t_next + k * MONTH + rng.randrange(-1800, 1800)) for k in range(1, rebills + 1)
        ]

    def use_card(self, v: int, rows: list[Row], alerts: list[tuple[str, str, str]]) -> int:
        """Bill one victim's card; returns the rows written."""
        ctx, rng, style, rates = self.ctx, self.rng, self.style, self.rates
        pop = ctx.pop
        card, expiry = pop.card(v, 2) if pop.card2[v] and rng.random() < 0.4 else pop.card(v, 1)
        house, street, stype, town, pc = pop.address(v, ctx.geo)
        self.account(v)
        first, last, holder, dob = self.names(v)
        cstyle = card_style(rng, rates["card_format"])
        product, category = self.product()
        attempts = self.attempts()
        ip = rng.choice(self.pool)
        written = 0
        for status, when in attempts:
            if when >= ctx.end:
                break
            if status == "approved" and rng.random() < float(self.fraud["victim_chargeback"]):
                status = "chargeback"
            if style == "proxy" or rng.random() < 0.2:
                ip = rng.choice(self.pool)
            values = base_values(ctx, rng)
            line1, line2 = self.typist.address_lines(house, street, stype, ctx.abbrev)
            values.update(
                transaction_time=iso_time(when) + zulu(rng, rates),
                product=product["code"],
                product_category=category,
                amount=str(product["price"]),
                status=status,
                card_number=typed(card, cstyle),
                card_expiry=expiry,
                cardholder_name=holder,
                first_name=first,
                last_name=last,
                date_of_birth=dob,
                email=self.email,
                username=self.user,
                address_line1=line1,
                address_line2=line2,
                town=self.typist.town(town),
                postcode=self.typist.postcode(pc),
                ip_address=ip,
                ip_country="" if rng.random() < rates["ip_country_missing"] else self.ip_country,
            )
            rows.append(Row(values, when, "stolen", pid(v), self.actor.actor, category))
            written += 1
            if style != "merchant_fraud" and status != "declined":  # the actor uses the account
                end = min(when + MONTH, self.w0 + self.window + 20 * DAY)
                ctx.spans.add(self.user, when, end, ip, product["code"], rng.uniform(4, 20))
        self.alert(card, attempts[0][1], attempts[-1][1], alerts)
        return written

    def alert(self, card: str, first_use: int, last_use: int, alerts: list[tuple[str, str, str]]) -> None:
        """The issuer's report, if any: before the first use (strong) or after the last (weaker)."""
        rng, fraud = self.rng, self.fraud
        r = rng.random()
        p_before = float(fraud["alert_before"]) * (0.5 if self.style in HARD else 1.0)
        if r < p_before:
            when = first_use - rng.randint(1, 40) * DAY
            alerts.append((card, iso_time(when)[:10], str(weighted(rng, fraud["alert_type_before"]))))
        elif r < p_before + float(fraud["alert_after"]):
            when = min(last_use + rng.randint(5, 60) * DAY, self.ctx.end + 15 * DAY)
            alerts.append((card, iso_time(when)[:10], str(weighted(rng, fraud["alert_type_after"]))))


def commit_fraud(
    ctx: Context,
    rng: random.Random,
    nrng: np.random.Generator,
    victims_pool: np.ndarray,
    subscribers: np.ndarray,
    registered: np.ndarray,
    target_records: int,
) -> FraudResult:
    """Plan the actors, hand them victims' cards in turn, and collect their rows and the issuers' alerts."""
    plan = plan_actors(rng, ctx.settings, target_records)
    victims = choose_victims(
        rng, nrng, ctx.settings, sum(b for _, b in plan), victims_pool, subscribers, registered
    )
    rows: list[Row] = []
    alerts: list[tuple[str, str, str]] = []
    actors: list[Actor] = []
    vi = 0
    for n, (style, budget) in enumerate(plan, start=1):
        run = ActorRun(ctx, rng, f"A{n:04d}", style)
        actors.append(run.actor)
        records = 0
        while records < budget and vi < len(victims):
            records += run.use_card(victims[vi], rows, alerts)
            vi += 1
    return FraudResult(rows, actors, alerts, victims[:vi])
