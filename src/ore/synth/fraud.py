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


def commit_fraud(
    ctx: Context,
    rng: random.Random,
    nrng: np.random.Generator,
    victims_pool: np.ndarray,
    subscribers: np.ndarray,
    registered: np.ndarray,
    target_records: int,
) -> FraudResult:
    settings = ctx.settings
    fraud = settings["fraud"]
    names = load_data("names")
    alias_first, alias_last = words(names["alias_first"]), words(names["alias_last"])
    plan = plan_actors(rng, settings, target_records)
    # victims: cards of people who are not buyers; in hard worlds now and then a subscriber's card,
    # or the card of someone on the register (a victim all the same)
    needed = sum(b for _, b in plan)
    pool = nrng.choice(victims_pool, min(len(victims_pool), needed), replace=False).tolist()
    subs = nrng.permutation(subscribers).tolist()
    regs = nrng.permutation(registered).tolist()
    p_sub, p_reg = settings.rates["subscriber_victim"], settings.rates["victim_on_register"]
    victims: list[int] = []
    for v in pool:
        r = rng.random()
        if r < p_sub and subs:
            victims.append(subs.pop())
        elif r < p_sub + p_reg and regs:
            victims.append(regs.pop())
        else:
            victims.append(v)
    vi = 0
    rows: list[Row] = []
    actors: list[Actor] = []
    alerts: list[tuple[str, str, str]] = []
    used: list[int] = []
    countries = fraud["actor_countries"]
    domains = fraud["email_domains"]
    stems = fraud["email_stems"]
    uk_domains = settings["population"]["email_domains"]
    span = ctx.end - ctx.start
    for n, (style, budget) in enumerate(plan, start=1):
        aid = f"A{n:04d}"
        country = str(weighted(rng, countries))
        if style == "proxy" and country == "GB":
            country = "RU"
        actor = Actor(aid, style, country)
        actors.append(actor)
        handle = f"{rng.choice(stems)}{rng.randrange(100, 9999)}"
        w0 = ctx.start + rng.randrange(0, span - 40 * DAY)
        window = DAY * (rng.randint(8, 25) if style != "merchant_fraud" else 1)
        ip_country = "GB" if style == "proxy" else country
        pool = [
            ctx.ips.new(rng, ip_country)
            for _ in range(
                1
                if style == "merchant_fraud"
                else rng.randint(3, 8)
                if style == "proxy"
                else rng.randint(1, 3)
            )
        ]
        if style == "merchant_fraud":
            actor.emails.append(ctx.claim(rng, aid, f"{handle}@{rng.choice(domains)}", handle)[0])
            site = rng.choice(settings["products"]["merchant_fraud_sites"])
            burst_hours = rng.randint(2, 4)
            bursts = [
                w0 + k * rng.randint(2, 12) * DAY
                for k in range(rng.randint(1, max(1, int(settings.rates["merchant_bursts"]))))
            ]
        elif style in ("carder", "fake_name"):
            actor.emails.append(ctx.claim(rng, aid, f"{handle}@{rng.choice(domains)}", handle)[0])
            for _ in range(rng.randint(0, 3) if style == "fake_name" else 0):
                variant = f"{handle}{rng.randrange(1, 99)}"
                actor.emails.append(ctx.claim(rng, aid, f"{variant}@{rng.choice(domains)}", variant)[0])
        typist = Typist(rng, {**settings.rates, "initial": settings.rates["initial"] * 2})
        email = user = ""
        records = 0
        cards_done = 0
        while records < budget and vi < len(victims):
            v = victims[vi]
            vi += 1
            used.append(v)
            pop = ctx.pop
            card, expiry = pop.card(v, 2) if pop.card2[v] and rng.random() < 0.4 else pop.card(v, 1)
            first_f, last_f = pop.first_name(v), pop.last_name(v)
            house, street, stype, town, pc = pop.address(v, ctx.geo)
            # --- identity used for this card
            if style == "merchant_fraud":
                local = f"member{rng.randrange(10000, 99999)}"
                email, user = ctx.claim(
                    rng, aid, f"{local}@{rng.choice(settings['package']['member_email_domains'])}", local
                )
            elif style == "carder":
                email = actor.emails[0]
                user = email.split("@")[0]
            elif style == "fake_name":
                email = rng.choice(actor.emails)
                user = email.split("@")[0]
            elif style == "identity_theft":
                local = email_local(rng, first_f, last_f, int(pop.dob_iso(v)[:4]))
                email, user = ctx.claim(rng, aid, f"{local}@{weighted(rng, uk_domains)}", local[:12])
                actor.emails.append(email)
            elif style == "proxy" and (cards_done % rng.randint(3, 5) == 0 or not email):
                local = email_local(
                    rng, rng.choice(alias_first), rng.choice(alias_last), rng.randint(1950, 1985)
                )
                email, user = ctx.claim(rng, aid, f"{local}@{weighted(rng, uk_domains)}", local[:12])
                actor.emails.append(email)
            cards_done += 1
            if style == "fake_name":
                first, last = rng.choice(alias_first), rng.choice(alias_last)
            elif style == "identity_theft":  # a full identity is copied, not typed
                first, last = first_f, last_f
            else:
                first, last = typist.first(first_f), typist.last(last_f)
            holder = f"{first_f} {last_f}".upper()
            if style != "identity_theft" and rng.random() < settings.rates["typo"]:
                holder = typo(rng, holder)
            dob = pop.dob_iso(v) if style == "identity_theft" and rng.random() < 0.5 else ""
            cstyle = card_style(rng, settings.rates["card_format"])
            category = "abuse"
            if style == "merchant_fraud":
                product = {"code": site, "price": rng.choice(settings["products"]["abuse"])["price"]}
            elif rng.random() < settings.rates["fraud_adult"]:  # an age-verification pass to resell
                product, category = rng.choice(settings["products"]["adult"]), "adult"
            else:
                product = rng.choice(settings["products"]["abuse"])
            # --- attempts: probes, an approval, rebills until stopped
            if style == "merchant_fraud":
                t = rng.choice(bursts) + rng.randrange(0, burst_hours * 3600)
            else:
                t = w0 + rng.randrange(0, window)
            lo, hi = fraud["probe_declines"]
            probes = 0 if style == "merchant_fraud" else rng.randint(int(lo), int(hi))
            if style == "identity_theft":
                probes = min(probes, 1)
            rebills = 0 if style == "merchant_fraud" else int(weighted(rng, fraud["rebills"]))
            if style == "identity_theft":
                rebills = min(rebills + 1, 4)
            attempts = [("declined", t + k * rng.randint(60, 900)) for k in range(probes)]
            if style in ("carder", "fake_name", "proxy") and rng.random() < float(fraud["dead_card"]):
                attempts.append(("declined", t + probes * 900 + rng.randint(60, 900)))  # dead: given up
            else:
                t_ok = t + probes * 900 + rng.randint(60, 900)
                attempts.append(("approved", t_ok))
                attempts += [
                    ("approved", t_ok + k * MONTH + rng.randrange(-1800, 1800)) for k in range(1, rebills + 1)
                ]
            ip = rng.choice(pool)
            for status, when in attempts:
                if when >= ctx.end:
                    break
                if status == "approved" and rng.random() < float(fraud["victim_chargeback"]):
                    status = "chargeback"
                if style == "proxy" or rng.random() < 0.2:
                    ip = rng.choice(pool)
                ipc = "" if rng.random() < settings.rates["ip_country_missing"] else ip_country
                values = base_values(ctx, rng)
                line1, line2 = typist.address_lines(house, street, stype, ctx.abbrev)
                values.update(
                    transaction_time=iso_time(when) + zulu(rng, settings.rates),
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
                    email=email,
                    username=user,
                    address_line1=line1,
                    address_line2=line2,
                    town=typist.town(town),
                    postcode=typist.postcode(pc),
                    ip_address=ip,
                    ip_country=ipc,
                )
                rows.append(Row(values, when, "stolen", pid(v), aid, category))
                records += 1
                if style != "merchant_fraud" and status != "declined":
                    ctx.spans.add(
                        user,
                        when,
                        min(when + MONTH, w0 + window + 20 * DAY),
                        ip,
                        product["code"],
                        rng.uniform(4, 20),
                    )
            first_use, last_use = attempts[0][1], attempts[-1][1]
            r = rng.random()
            p_before = float(fraud["alert_before"]) * (0.5 if style in HARD else 1.0)
            if r < p_before:
                when = first_use - rng.randint(1, 40) * DAY
                alerts.append((card, iso_time(when)[:10], str(weighted(rng, fraud["alert_type_before"]))))
            elif r < p_before + float(fraud["alert_after"]):
                when = min(last_use + rng.randint(5, 60) * DAY, ctx.end + 15 * DAY)
                alerts.append((card, iso_time(when)[:10], str(weighted(rng, fraud["alert_type_after"]))))
        if not actor.emails and email:
            actor.emails.append(email)
    return FraudResult(rows, actors, alerts, used)
