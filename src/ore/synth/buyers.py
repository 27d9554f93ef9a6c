"""Genuine buyers: subscribers rebilled month after month, and adult-only customers.

A genuine subscriber's orders agree with each other and with the access log: the same
account and email, the same home IP (changing now and then within its ISP), visits from that
IP between rebills. That agreement is what corroboration looks for; the noise (typos,
nicknames, moves, missing dates of birth) is what resolution must see through.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from ore.synth.cards import typed
from ore.synth.config import Settings
from ore.synth.geography import INWARD, Geography
from ore.synth.noise import Typist, email_local
from ore.synth.orders import DAY, MONTH, IPs, Row, Spans, iso_time, weighted
from ore.synth.population import EPOCH, Population

ABROAD = ("ES", "FR", "NL", "IE", "DE")


@dataclass
class Context:
    """What every lead-making module needs."""

    pop: Population
    geo: Geography
    settings: Settings
    ips: IPs
    spans: Spans
    start: int  # timeline, epoch seconds
    end: int
    abbrev: dict[str, str]
    merchant: str
    merchant_variants: list[str]
    shared_proxies: list[str]  # an ISP's proxy addresses (AOL's), shared by all its members
    proxy_country: dict[str, str]  # where each proxy is geolocated (AOL's: the US, or Britain)
    alerts: list[tuple[str, str, str]]  # issuers' reports made by buyers themselves (a lost card replaced)
    home_ips: dict[int, str]  # household -> its internet connection, shared by everyone at home

    owners: dict[str, str]  # "m:" mailbox or "u:" account name -> the person or actor who holds it

    def claim(self, rng: random.Random, owner: str, email: str, user: str) -> tuple[str, str]:
        """A mailbox and an account name belong to one holder: add digits until both are free or theirs."""
        local, _, domain = email.partition("@")
        while any(self.owners.get(k, owner) != owner for k in (f"m:{email.lower()}", f"u:{user.lower()}")):
            digits = str(rng.randrange(2, 999))
            email = f"{local}{digits}@{domain}"
            user = user[: max(4, 12 - len(digits))] + digits
        self.owners[f"m:{email.lower()}"] = owner
        self.owners[f"u:{user.lower()}"] = owner
        return email, user

    def home_ip(self, rng: random.Random, p: int) -> str:
        h = int(self.pop.hh[p])
        if h not in self.home_ips:
            self.home_ips[h] = self.ips.new(rng, "GB")
        return self.home_ips[h]

    district_cum: list[float]  # cumulative district weights, for addresses drawn one at a time

    def random_address(self, rng: random.Random) -> tuple[str, str, str, str, str]:
        """Some other address in the UK (a workplace, a friend's): number, street, type, town, postcode."""
        d = rng.choices(range(len(self.district_cum)), cum_weights=self.district_cum)[0]
        names = self.pop.names
        inward = INWARD[rng.randrange(len(INWARD))]
        return (
            str(rng.randint(1, 220)),
            str(names.streets[rng.randrange(len(names.streets))]),
            str(names.street_types[rng.randrange(len(names.street_types))]),
            str(self.geo.towns[d]),
            f"{self.geo.districts[d]} {inward}",
        )


def ts(iso: str) -> int:
    return (date.fromisoformat(iso) - EPOCH).days * DAY


def pid(p: int) -> str:
    return f"P{p:07d}"


def base_values(ctx: Context, rng: random.Random) -> dict[str, str]:
    merchant = ctx.merchant if rng.random() < 0.9 else rng.choice(ctx.merchant_variants)
    return {
        "merchant": merchant,
        "currency": ctx.settings["package"]["currency"],
        "country": "GB",
        "address_line2": "",
        "phone": "",
    }


def card_style(rng: random.Random, rate: float) -> int:
    return 0 if rng.random() >= rate else rng.choice((1, 1, 2))


@dataclass
class Buyer:
    """One genuine buyer's fixed habits: how they type, which cards, mail and connection they use."""

    p: int
    formal_first: str
    last: str
    dob: str
    typist: Typist
    embossed: str  # the name on the card
    card_style: int
    phone: str
    shared_proxy: bool  # connects through an ISP's shared proxies (AOL): many users per IP, often "US"


def buyer_rows(ctx: Context, rng: random.Random, p: int, *, adult_only: bool) -> list[Row]:
    """All orders of one genuine buyer, and their visit spans."""
    pop, rates = ctx.pop, ctx.settings.rates
    sub = ctx.settings["subscribers"]
    products = ctx.settings["products"]
    formal_first, last = pop.first_name(p), pop.last_name(p)
    typist = Typist.for_person(rng, rates, formal_first, pop.names.nicknames)
    months = int(weighted(rng, sub["adult_months"] if adult_only else sub["months"]))
    span = ctx.end - ctx.start
    months = min(months, max(1, span // MONTH - 1))
    t0 = ctx.start + rng.randrange(0, max(1, span - months * MONTH))
    t0 = t0 - t0 % DAY + rng.randrange(DAY)  # a habitual time of day
    kind = "adult" if adult_only else "abuse"
    catalogue = products[kind]
    site = rng.choice(catalogue)
    switch_site = (
        rng.randrange(1, months) if months > 1 and rng.random() < float(sub["second_site"]) else None
    )
    site2 = rng.choice(catalogue)
    cards = [pop.card(p, 1)]
    card_switch = None
    if pop.card2[p] and rng.random() < rates["second_card_use"]:
        cards.append(pop.card(p, 2))
        card_switch = rng.randrange(0, months) if months > 1 else 0
    # a fresh start: a replacement card, a new mailbox and account, another ISP, all in the same month
    fresh = rng.randrange(1, months) if months > 2 and rng.random() < rates["fresh_start"] else None
    fresh_card = pop.card(p, 3) if pop.card3[p] else cards[-1]
    birth_year = int(pop.dob_iso(p)[:4])
    domains = ctx.settings["population"]["email_domains"]
    private = ctx.settings["fraud"]["email_domains"]

    def new_email() -> tuple[str, str]:
        local = email_local(
            rng, formal_first if rng.random() < 0.8 else (typist.nickname or formal_first), last, birth_year
        )
        user = local if len(local) <= 12 or rng.random() < 0.3 else local[:12]
        domain = rng.choice(private) if rng.random() < rates["private_email"] else weighted(rng, domains)
        return ctx.claim(rng, pid(p), f"{local}@{domain}", user.replace(".", rng.choice((".", "_", "."))))

    email, user = new_email()
    buyer = Buyer(
        p=p,
        formal_first=formal_first,
        last=last,
        dob=pop.dob_iso(p),
        typist=typist,
        embossed=f"{formal_first if rng.random() < 0.9 else formal_first[0]} {last}".upper(),
        card_style=card_style(rng, rates["card_format"]),
        phone=uk_phone(rng) if rng.random() < rates["phone_given"] else "",
        shared_proxy=email.endswith("@aol.com") and rng.random() < rates["aol_proxy"],
    )
    email_switch = rng.randrange(1, months) if months > 1 and rng.random() < rates["email_change"] else None
    ip = ctx.home_ip(rng, p)
    move_at = None
    if pop.moved[p] and months > 1 and rng.random() < rates["moved_during"]:
        move_at = rng.randrange(1, months)
    # an order or two from another address (work, a partner's), never the latest
    elsewhere = rng.randrange(0, months - 1) if months > 1 and rng.random() < rates["alt_address"] else None
    visit_rate = 0.0 if rng.random() < rates["never_visit"] else rng.uniform(*sub["visits_per_month"])
    if adult_only:
        visit_rate *= 0.5
    rows: list[Row] = []
    adult_also = not adult_only and rng.random() < float(sub["adult_also"])
    for m in range(months):
        t = t0 + m * MONTH + rng.randrange(-3600, 3600)
        if m and rng.random() < rates["ip_change"]:
            ip = ctx.ips.new(rng, "GB", near=ip)
        if (email_switch is not None and m == email_switch) or (fresh is not None and m == fresh):
            email, user = new_email()
        if fresh is not None and m == fresh:
            ip = ctx.ips.new(rng, "GB")
            if pop.card3[p]:  # the old card was reported lost before the new one arrived
                ctx.alerts.append((cards[0][0], iso_time(t - rng.randint(7, 25) * DAY)[:10], "lost"))
        product = site if switch_site is None or m < switch_site else site2
        card, expiry = cards[-1] if card_switch is not None and m >= card_switch else cards[0]
        if fresh is not None and m >= fresh:
            card, expiry = fresh_card
        orders = [(t, product, kind)]
        if adult_also and rng.random() < 0.5:
            extra = rng.choice(products["adult"])
            orders.append((t + rng.randrange(600, 5 * DAY), extra, "adult"))
        if m == elsewhere:
            address = ctx.random_address(rng)
        else:
            address = pop.address(p, ctx.geo, recorded=move_at is not None and m < move_at)
        for when, prod, cat in orders:
            order_ip = rng.choice(ctx.shared_proxies) if buyer.shared_proxy else ip
            rows.append(
                _genuine_row(ctx, rng, buyer, when, prod, cat, card, expiry, email, user, order_ip, address)
            )
            if buyer.shared_proxy:  # each visit may leave from another proxy of the pool
                for proxy in rng.sample(ctx.shared_proxies, 3):
                    ctx.spans.add(user, when, when + MONTH, proxy, prod["code"], visit_rate / 3)
            else:
                ctx.spans.add(user, when, when + MONTH, ip, prod["code"], visit_rate)
    return rows


def _genuine_row(
    ctx: Context,
    rng: random.Random,
    b: Buyer,
    t: int,
    product: dict,
    category: str,
    card: str,
    expiry: str,
    email: str,
    user: str,
    ip: str,
    address: tuple[str, str, str, str, str],
) -> Row:
    rates = ctx.settings.rates
    sub = ctx.settings["subscribers"]
    house, street, stype, town, pc = address
    line1, line2 = b.typist.address_lines(house, street, stype, ctx.abbrev)
    typist = b.typist
    first, lastn = typist.first(b.formal_first), typist.last(b.last)
    if rng.random() < rates["name_swap"]:
        first, lastn = lastn, first
    r = rng.random()
    chargeback = float(sub["genuine_chargeback"])
    status = "chargeback" if r < chargeback else "refunded" if r < 0.003 + chargeback else "approved"
    ip_country = ctx.proxy_country[ip] if b.shared_proxy else "GB"
    if rng.random() < rates["genuine_abroad"]:
        ip_country = rng.choice(ABROAD)
        ip = ctx.ips.new(rng, ip_country)
    if rng.random() < rates["ip_country_missing"]:
        ip_country = ""
    cat_written = "unknown" if rng.random() < rates["unknown_category"] else category
    values = base_values(ctx, rng)
    if email and rng.random() < rates["case_variation"] * 0.2:
        email = email.upper()
    values.update(
        phone=b.phone if rng.random() < 0.9 else "",
        transaction_time=iso_time(t) + zulu(rng, rates),
        product=product["code"],
        product_category=cat_written,
        amount=str(product["price"]),
        status=status,
        card_number=typed(card, b.card_style if rng.random() < 0.8 else 0),
        card_expiry=expiry,
        cardholder_name=(f"{first} {lastn}".upper() if rng.random() < 0.7 else b.embossed),
        first_name=_case(rng, first, rates["case_variation"]),
        last_name=_case(rng, lastn, rates["case_variation"]),
        date_of_birth=typist.dob(b.dob),
        email=email,
        username=user,
        address_line1=line1,
        address_line2=line2,
        town="" if rng.random() < rates["town_missing"] else typist.town(town),
        postcode=typist.postcode(pc),
        ip_address=ip,
        ip_country=ip_country,
    )
    return Row(values, t, "genuine", pid(b.p), "", category)


def uk_phone(rng: random.Random) -> str:
    """An invented UK landline or mobile number, typed one of several ways."""
    if rng.random() < 0.6:
        area, local = f"01{rng.randrange(100, 1000)}", f"{rng.randrange(10**6):06d}"
    else:
        area, local = f"07{rng.randrange(700, 1000)}", f"{rng.randrange(10**6):06d}"
    style = rng.random()
    if style < 0.6:
        return f"{area} {local}"
    if style < 0.85:
        return area + local
    return f"+44 {area[1:]} {local}"


def zulu(rng: random.Random, rates: dict[str, float]) -> str:
    return "Z" if rng.random() < rates["time_zone"] else ""


def _case(rng: random.Random, s: str, rate: float) -> str:
    if rng.random() >= rate:
        return s
    return s.upper() if rng.random() < 0.5 else s.lower()
