"""The indicators: each a set-based SQL query over the stage's working tables.

Every query returns one row per record where the indicator fires: ``record_id``, the detail
columns its sentence may name and, for counted indicators, ``n`` (the count its tiers weigh).
The queries read only the working tables built by :mod:`ore.corroborate.base`:

``_cb_rec``    one row per accepted lead of the package (normalised identifiers, person key, and
               ``thread``: one card used through one account, whose records share one fate)
``_cb_vis``    the package's visits (normalised account, IP, IP network, time)
``_cb_names``  per record, how well the typed surname matches the cardholder name (0..1)
``_cb_alerts`` card alerts from the reference holdings (empty when none are loaded)

Each query is written in DuckDB's SQL in forms that sqlglot transpiles right for Spark
(``ore.stagesql``): the value of the first row in an order is ``arg_min`` over a struct of the
order's keys, not ``first(... ORDER BY ...)``.

"Different people" is always counted as the least of distinct persons, distinct cards, distinct
surname keys (first and last letter of the cardholder's surname, so that typing errors do not
make new people) and distinct home postcodes, so neither a person with two cards, nor a resolve
that split one person in two, nor two people of one name sharing a name-made account, nor a
household sharing one email or connection looks like many people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PEOPLE = ("least(count(DISTINCT person_key), count(DISTINCT card_token), count(DISTINCT sname), "
          "count(DISTINCT coalesce(pc, person_key)))")


@dataclass(frozen=True)
class Spec:
    details: tuple[str, ...]
    sql: Callable[[dict[str, Any]], str]  # params (plus "threshold" for counted) -> SQL
    params: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (minimum, default)
    counted: bool = False
    default_count: float = 1


def _alert_before(p: dict[str, Any]) -> str:
    return f"""
    SELECT r.record_id,
           -- the latest alert (the fewest days before), the first type of that day
           arg_min(a.alert_type, struct_pack(days := date_diff('day', a.reported_on, r.day),
                                             kind := a.alert_type)) AS alert_type,
           CAST(max(a.reported_on) AS VARCHAR) AS reported_on,
           min(date_diff('day', a.reported_on, r.day)) AS days
    FROM _cb_rec r JOIN _cb_alerts a ON a.card_token = r.card_token
    WHERE a.reported_on <= r.day AND date_diff('day', a.reported_on, r.day) <= {int(p['max_days'])}
    GROUP BY r.record_id"""


def _alert_after(p: dict[str, Any]) -> str:
    return f"""
    SELECT r.record_id,
           arg_min(a.alert_type, struct_pack(d := a.reported_on, kind := a.alert_type)) AS alert_type,
           CAST(min(a.reported_on) AS VARCHAR) AS reported_on,
           min(date_diff('day', r.day, a.reported_on)) AS days
    FROM _cb_rec r JOIN _cb_alerts a ON a.card_token = r.card_token
    WHERE a.reported_on > r.day AND date_diff('day', r.day, a.reported_on) <= {int(p['max_days'])}
    GROUP BY r.record_id"""


def _chargeback(p: dict[str, Any]) -> str:
    return "SELECT record_id, status FROM _cb_rec WHERE status = 'chargeback'"


def _repeated_chargebacks(p: dict[str, Any]) -> str:
    return f"""
    WITH t AS (SELECT thread, count(*) FILTER (WHERE status = 'chargeback') AS n,
                      count(*) FILTER (WHERE completed) AS paid
               FROM _cb_rec GROUP BY thread)
    SELECT r.record_id, t.n, t.paid FROM _cb_rec r JOIN t USING (thread)
    WHERE t.n >= {p['threshold']} AND t.n >= {float(p['min_share'])} * t.paid"""


def _declines(p: dict[str, Any]) -> str:
    w = float(p["window_hours"]) * 3600
    return f"""
    WITH d AS (SELECT record_id, card_token, ts FROM _cb_rec WHERE status = 'declined'),
         a AS (SELECT record_id, card_token, ts FROM _cb_rec WHERE completed),
         pairs AS (SELECT a.record_id AS approval, d.record_id AS decline
                   FROM a JOIN d ON d.card_token = a.card_token AND d.ts <= a.ts AND a.ts - d.ts <= {w}),
         per AS (SELECT approval, count(*) AS n FROM pairs GROUP BY approval),
         hit AS (SELECT approval AS record_id, n FROM per
                 UNION ALL
                 SELECT pairs.decline, per.n FROM pairs JOIN per USING (approval))
    SELECT record_id, max(n) AS n, {p['window_hours']:g} AS hours FROM hit
    GROUP BY record_id HAVING max(n) >= {p['threshold']}"""


def _carding_reported(p: dict[str, Any]) -> str:
    dec = _declines({"window_hours": p["window_hours"], "threshold": 1})
    return f"""
    WITH dec AS ({dec}),
         th AS (SELECT DISTINCT r.thread, r.card_token, r.day FROM dec JOIN _cb_rec r USING (record_id)),
         al AS (SELECT th.thread,
                       arg_min(a.alert_type, struct_pack(d := a.reported_on, kind := a.alert_type)) AS alert_type,
                       min(a.reported_on) AS reported_on
                FROM th JOIN _cb_alerts a ON a.card_token = th.card_token
                WHERE abs(date_diff('day', th.day, a.reported_on)) <= {int(p['max_days'])}
                GROUP BY th.thread)
    SELECT r.record_id, al.alert_type, CAST(al.reported_on AS VARCHAR) AS reported_on
    FROM _cb_rec r JOIN al USING (thread)"""


def _sources(where: str = "") -> str:
    """Each record's sources (IP, email, account) as labelled strings."""
    return f"""
        SELECT record_id, person_key, card_token, sname, pc, status, ts, 'IP ' || ip_n AS source
        FROM _cb_rec WHERE ip_n IS NOT NULL AND ip_net NOT IN (SELECT ip_net FROM _cb_rotating) {where}
        UNION ALL
        SELECT record_id, person_key, card_token, sname, pc, status, ts, 'email ' || email_n
        FROM _cb_rec WHERE email_n IS NOT NULL {where}
        UNION ALL
        SELECT record_id, person_key, card_token, sname, pc, status, ts, 'account ' || user_n
        FROM _cb_rec WHERE user_n IS NOT NULL {where}"""


def _at_once(uses: str, key: str, days: float) -> str:
    """Per ``key``, the most different people who began using it within ``days`` of each other.

    ``uses`` has columns key, person_key, sname, pc, ts. A fraudster's address or account serves
    many people's cards in one campaign; a large provider's proxy (in 2002, AOL's) serves many
    people too, but one now and another months later. People are counted as the least of
    persons, surname keys and home postcodes, each at its first use: the people of one household
    (one surname, or one postcode) share a connection and count once.
    """
    w = float(days) * 86400

    def most(col: str, alias: str, where: str = "") -> str:
        return f"""
        f{alias} AS (SELECT {key}, {col}, min(ts) AS t0 FROM ({uses}) {where} GROUP BY ALL),
        w{alias} AS (SELECT {key}, max(c) AS n{alias} FROM (
                   SELECT {key}, count(*) OVER (PARTITION BY {key} ORDER BY t0
                                                RANGE BETWEEN CURRENT ROW AND {w} FOLLOWING) AS c FROM f{alias})
               GROUP BY ALL)"""

    return f"""{most("person_key", "p")},{most("sname", "s", "WHERE sname IS NOT NULL")},
        {most("coalesce(pc, person_key)", "h")},
        people AS (SELECT wp.{key}, least(wp.np, coalesce(ws.ns, 0), coalesce(wh.nh, 0)) AS n
                   FROM wp LEFT JOIN ws USING ({key}) LEFT JOIN wh USING ({key}))"""


def _card_testing(p: dict[str, Any]) -> str:
    return f"""
    WITH src AS ({_sources()}),
         {_at_once("SELECT source, person_key, sname, pc, ts FROM src WHERE status = 'declined'", "source",
                   p['window_days'])},
         g AS (SELECT source, n FROM people WHERE n >= {p['threshold']})
    SELECT src.record_id, arg_min(g.source, struct_pack(n := -g.n, v := g.source)) AS source, max(g.n) AS n,
           {p['window_days']:g} AS days
    FROM src JOIN g USING (source) GROUP BY src.record_id"""


# A rotating proxy's address is geolocated where the proxy stands (AOL's in the US), not where
# its user is: such orders are not evidence of place.
NOT_ROTATING = "(ip_net IS NULL OR ip_net NOT IN (SELECT ip_net FROM _cb_rotating))"


def _ip_country(p: dict[str, Any]) -> str:
    return f"""
    SELECT record_id, ip_cc AS ip_country, cc AS country FROM _cb_rec
    WHERE ip_cc IS NOT NULL AND cc IS NOT NULL AND ip_cc <> cc AND {NOT_ROTATING}"""


def _thread_abroad(p: dict[str, Any]) -> str:
    return f"""
    WITH g AS (SELECT thread, count(*) AS located,
                      count(*) FILTER (WHERE ip_cc <> cc) AS n,
                      min(ip_cc) FILTER (WHERE ip_cc <> cc) AS ip_country
               FROM _cb_rec WHERE ip_cc IS NOT NULL AND cc IS NOT NULL AND {NOT_ROTATING} GROUP BY thread)
    SELECT r.record_id, g.n, g.located, g.ip_country FROM _cb_rec r JOIN g USING (thread)
    WHERE g.n >= {p['threshold']} AND g.n >= {float(p['min_share'])} * g.located"""


def _never_visited(p: dict[str, Any]) -> str:
    grace = float(p["min_log_days_after"]) * 86400
    return f"""
    SELECT r.record_id, r.user_n AS username FROM _cb_rec r
    WHERE r.completed AND r.user_n IS NOT NULL
      AND r.ts <= (SELECT max(ts) FROM _cb_vis) - {grace}
      AND r.ts >= (SELECT min(ts) FROM _cb_vis) - 30 * 86400
      AND NOT EXISTS (SELECT 1 FROM _cb_vis v WHERE v.user_n = r.user_n)"""


def _visits_unlike(p: dict[str, Any]) -> str:
    # A visit fits where the cardholder bought from, or where another buyer through the same
    # account did: the log names accounts, not people, and two namesakes may share an account
    # name ("jmay"); the visits of one are no evidence against the other.
    return """
    WITH places AS (SELECT DISTINCT person_key, ip_net FROM _cb_rec WHERE ip_net IS NOT NULL),
         acct_places AS (SELECT DISTINCT user_n, ip_net FROM _cb_rec WHERE ip_net IS NOT NULL AND user_n IS NOT NULL),
         acct AS (SELECT DISTINCT user_n, ip_net FROM _cb_vis WHERE ip_net IS NOT NULL),
         rv AS (SELECT r.record_id, r.user_n, a.ip_net, p.ip_net IS NOT NULL OR q.ip_net IS NOT NULL AS fits
                FROM _cb_rec r JOIN acct a ON a.user_n = r.user_n
                LEFT JOIN places p ON p.person_key = r.person_key AND p.ip_net = a.ip_net
                LEFT JOIN acct_places q ON q.user_n = r.user_n AND q.ip_net = a.ip_net)
    SELECT record_id, min(user_n) AS username, count(DISTINCT ip_net) AS n_places
    FROM rv GROUP BY record_id HAVING NOT bool_or(fits)"""


def _shared(column: str, label: str, named: str) -> Callable[[dict[str, Any]], str]:
    # A record whose account is made from its own cardholder's name does not count: the site
    # cuts account names short, so Christopher Taylor and Christopher King may both be
    # "christopher_" without sharing anything.
    def sql(p: dict[str, Any]) -> str:
        return f"""
        WITH g AS (SELECT {column}, {PEOPLE} AS n FROM _cb_rec WHERE {column} IS NOT NULL AND NOT {named}
                   GROUP BY {column} HAVING {PEOPLE} >= {p['threshold']})
        SELECT r.record_id, r.{column} AS {label}, g.n FROM _cb_rec r JOIN g USING ({column})"""

    return sql


def _account_pattern(p: dict[str, Any]) -> str:
    return f"""
    WITH acct AS (SELECT coalesce(user_n, email_n) AS acct, bool_or(stem_from_name) AS named
                  FROM _cb_rec GROUP BY ALL),
         -- an account is made from its holder's name if any of its records shows it (typing errors)
         s AS (SELECT r.record_id, r.person_key, r.card_token, r.sname, r.pc, r.stem
               FROM _cb_rec r JOIN acct a ON a.acct = coalesce(r.user_n, r.email_n)
               WHERE length(r.stem) >= 3 AND NOT a.named),
         g AS (SELECT stem, {PEOPLE} AS n FROM s GROUP BY stem HAVING {PEOPLE} >= {p['threshold']})
    SELECT s.record_id, s.stem, g.n FROM s JOIN g USING (stem)"""


def _shared_ip(p: dict[str, Any]) -> str:
    return f"""
    WITH solo AS (SELECT user_n FROM _cb_rec WHERE user_n IS NOT NULL GROUP BY user_n
                  HAVING count(DISTINCT person_key) = 1),
         -- visits count for an account only where one person used it: the log names accounts,
         -- not people, and two people of one name may share an account name
         vacct AS (SELECT DISTINCT user_n, ip_n FROM _cb_vis JOIN solo USING (user_n)
                   WHERE ip_n IS NOT NULL AND ip_net NOT IN (SELECT ip_net FROM _cb_rotating)),
         rip AS (SELECT record_id, ip_n AS ip FROM _cb_rec
                 WHERE ip_n IS NOT NULL AND ip_net NOT IN (SELECT ip_net FROM _cb_rotating)
                 UNION
                 SELECT r.record_id, v.ip_n FROM _cb_rec r JOIN vacct v ON v.user_n = r.user_n),
         uses AS (SELECT rip.ip, r.person_key, r.sname, r.pc, r.ts FROM rip JOIN _cb_rec r USING (record_id)),
         {_at_once("SELECT * FROM uses", "ip", p['window_days'])},
         g AS (SELECT ip, n FROM people WHERE n >= {p['threshold']})
    SELECT rip.record_id, arg_min(g.ip, struct_pack(n := -g.n, v := g.ip)) AS ip, max(g.n) AS n,
           {p['window_days']:g} AS days
    FROM rip JOIN g USING (ip) GROUP BY rip.record_id"""


def _name_unlike(p: dict[str, Any]) -> str:
    # not where most of the thread's records name the cardholder: one typing slip among many
    # correct names is a slip, a name unlike the cardholder's on every payment is another person
    lim = float(p["min_similarity"])
    return f"""
    WITH t AS (SELECT r.thread, avg(CASE WHEN s.best >= {lim} THEN 1.0 ELSE 0.0 END) AS share
               FROM _cb_rec r JOIN _cb_names s USING (record_id) GROUP BY r.thread)
    SELECT r.record_id, r.typed_name, r.cardholder_name
    FROM _cb_names s JOIN _cb_rec r USING (record_id) JOIN t USING (thread)
    WHERE s.best < {lim} AND t.share < 0.5"""


def _firsts() -> str:
    """The first record of each card in the package: a new card signing up."""
    return """
        SELECT * FROM (
            SELECT record_id, card_token, ip_n, product, ts,
                   row_number() OVER (PARTITION BY card_token ORDER BY ts, record_id) AS rn
            FROM _cb_rec WHERE product IS NOT NULL)
        WHERE rn = 1"""


def _signup_burst(p: dict[str, Any]) -> str:
    half = float(p["window_hours"]) * 3600 / 2
    return f"""
    WITH f AS ({_firsts()}),
         w AS (SELECT record_id, ip_n, product,
                      count(*) OVER (PARTITION BY ip_n, product ORDER BY ts
                                     RANGE BETWEEN {half} PRECEDING AND {half} FOLLOWING) AS n
               FROM f WHERE ip_n IS NOT NULL)
    SELECT record_id, ip_n AS source, product, n, {p['window_hours']:g} AS hours
    FROM w WHERE n >= {p['threshold']}"""


def _signup_spike(p: dict[str, Any]) -> str:
    half = float(p["window_minutes"]) * 60 / 2
    base = max(float(p["baseline_days"]) * 86400, 4 * half)
    return f"""
    WITH f AS ({_firsts()}),
         w AS (SELECT record_id, product,
                      count(*) OVER (PARTITION BY product ORDER BY ts
                                     RANGE BETWEEN {half} PRECEDING AND {half} FOLLOWING) AS n,
                      count(*) OVER (PARTITION BY product ORDER BY ts
                                     RANGE BETWEEN {base} PRECEDING AND {base} FOLLOWING) AS nb
               FROM f),
         x AS (SELECT *, (nb - n) * {2 * half} / {2 * base - 2 * half} AS expected FROM w)
    SELECT record_id, product, n, round(expected, 1) AS expected, {p['window_minutes']:g} AS minutes
    FROM x WHERE n >= {p['threshold']} AND n >= expected + {float(p['z'])} * sqrt(expected) + 1"""


def _repeat(p: dict[str, Any]) -> str:
    gap = float(p["min_days"]) * 86400
    return f"""
    WITH c AS (SELECT record_id, person_key, email_n, user_n, ts, day FROM _cb_rec WHERE status = 'approved'),
         pairs AS (SELECT r.record_id, c.record_id AS other, abs(c.ts - r.ts) AS gap, c.ts, r.ts AS own_ts,
                          date_trunc('month', c.day) AS month
                   FROM _cb_rec r JOIN c ON c.person_key = r.person_key
                   AND (c.email_n = r.email_n OR c.user_n = r.user_n))
    -- n: the calendar months with an undisputed purchase through the same account
    SELECT record_id, count(DISTINCT month) AS n, count(DISTINCT other) AS purchases,
           CAST(round((max(ts) - min(ts)) / 86400) AS BIGINT) AS days
    FROM pairs GROUP BY record_id HAVING max(ts) - min(ts) >= {gap} AND count(DISTINCT other) >= 2"""


def _ip_consistent(p: dict[str, Any]) -> str:
    gap = float(p["min_days"]) * 86400
    return f"""
    SELECT r.record_id, count(DISTINCT c.record_id) AS n, CAST(round(max(abs(c.ts - r.ts)) / 86400) AS BIGINT) AS days
    FROM _cb_rec r JOIN _cb_rec c
      ON c.person_key = r.person_key AND c.ip_net = r.ip_net AND c.record_id <> r.record_id
     AND abs(c.ts - r.ts) >= {gap}
    GROUP BY r.record_id"""


def _visits_fit(p: dict[str, Any]) -> str:
    return f"""
    WITH owners AS (SELECT user_n, count(DISTINCT sname) AS np FROM _cb_rec WHERE user_n IS NOT NULL GROUP BY user_n),
         v AS (SELECT user_n, ip_net, count(DISTINCT day) AS days FROM _cb_vis WHERE ip_net IS NOT NULL
               GROUP BY user_n, ip_net)
    SELECT r.record_id, r.user_n AS username, v.days
    FROM _cb_rec r JOIN v ON v.user_n = r.user_n AND v.ip_net = r.ip_net
    JOIN owners o ON o.user_n = r.user_n
    WHERE o.np <= 1 AND v.days >= {int(p['min_days'])}"""


def _account_in_name(p: dict[str, Any]) -> str:
    return """
    SELECT r.record_id, coalesce(r.user_n, r.email_n) AS username FROM _cb_rec r JOIN _cb_names s USING (record_id)
    WHERE s.best >= 0.9 AND r.acct_from_name"""


SPECS: dict[str, Spec] = {
    "alert_before_txn": Spec(("alert_type", "reported_on", "days"), _alert_before, {"max_days": (0, 730)}),
    "alert_after_txn": Spec(("alert_type", "reported_on", "days"), _alert_after, {"max_days": (0, 365)}),
    "chargeback": Spec(("status",), _chargeback),
    "repeated_chargebacks": Spec(
        ("n", "paid"), _repeated_chargebacks, {"min_share": (0, 0.25)}, counted=True, default_count=2
    ),
    "declines_before_approval": Spec(("n", "hours"), _declines, {"window_hours": (0, 24)}, counted=True),
    "carding_reported": Spec(
        ("alert_type", "reported_on"), _carding_reported, {"window_hours": (0, 24), "max_days": (0, 365)}
    ),
    "card_testing": Spec(("source", "n", "days"), _card_testing, {"window_days": (1, 30)}, counted=True,
                         default_count=3),
    "ip_country_mismatch": Spec(("ip_country", "country"), _ip_country),
    "thread_abroad": Spec(
        ("n", "located", "ip_country"), _thread_abroad, {"min_share": (0, 0.5)}, counted=True, default_count=2
    ),
    "never_visited": Spec(("username",), _never_visited, {"min_log_days_after": (0, 7)}),
    "visits_unlike_cardholder": Spec(("username", "n_places"), _visits_unlike),
    "shared_email": Spec(("email", "n"), _shared("email_n", "email", "email_from_name"), counted=True, default_count=3),
    "shared_account": Spec(("username", "n"), _shared("user_n", "username", "user_from_name"), counted=True, default_count=3),
    "account_pattern": Spec(("stem", "n"), _account_pattern, counted=True, default_count=4),
    "shared_ip": Spec(
        ("ip", "n", "days"), _shared_ip, {"window_days": (1, 30)}, counted=True,
        default_count=3,
    ),
    "name_unlike_cardholder": Spec(
        ("typed_name", "cardholder_name"), _name_unlike, {"min_similarity": (0, 0.8)}
    ),
    "signup_burst": Spec(
        ("source", "product", "n", "hours"), _signup_burst, {"window_hours": (0.01, 6)}, counted=True, default_count=4
    ),
    "signup_spike": Spec(
        ("product", "n", "expected", "minutes"),
        _signup_spike,
        {"window_minutes": (1, 60), "baseline_days": (0, 3), "z": (0, 5)},
        counted=True,
        default_count=6,
    ),
    "repeat_purchases": Spec(("n", "purchases", "days"), _repeat, {"min_days": (0, 28)}, counted=True,
                             default_count=2),
    "long_use": Spec(("n", "purchases", "days"), _repeat, {"min_days": (0, 150)}, counted=True, default_count=6),
    "purchase_ip_consistent": Spec(("n", "days"), _ip_consistent, {"min_days": (0, 7)}),
    "visits_fit": Spec(("username", "days"), _visits_fit, {"min_days": (1, 2)}),
    "account_in_cardholder_name": Spec(("username",), _account_in_name),
}
