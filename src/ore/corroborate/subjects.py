"""Unidentified subjects: connected components of fraud-suspected records.

Records are linked through shared keys (email, account, IP of the order or of the account's
visits, a sign-up burst, the same card on the same day); see :func:`cluster` for IP addresses. Components are found by label
propagation in SQL with pointer jumping: each record starts with its own id as label, takes the
smallest label among the records it shares a key with, then the label of its label, until
nothing changes. The same SQL runs on any engine (``ore.stagesql``) and scales with the number
of suspected records.
"""

from __future__ import annotations

from ore.corroborate.policy import Policy
from ore.errors import OreError
from ore.stagesql import StageSQL

MAX_ROUNDS = 200


def _edges_sql(policy: Policy) -> str:
    sus = "SELECT r.* FROM _cb_rec r JOIN _cb_score s USING (record_id) WHERE s.fraud_suspected"
    parts: list[str] = []
    links = set(policy.link_on)
    if "email" in links:
        parts.append(f"SELECT record_id, 'e:' || email_n AS k FROM ({sus}) WHERE email_n IS NOT NULL")
    if "username" in links:
        parts.append(f"SELECT record_id, 'u:' || user_n AS k FROM ({sus}) WHERE user_n IS NOT NULL")
    if "card_day" in links:
        parts.append(f"SELECT record_id, 'c:' || card_token || ':' || CAST(day AS VARCHAR) AS k FROM ({sus})")
    if "burst" in links:
        gap = 3600.0
        spike = policy.indicators.get("signup_spike")
        if spike is not None and spike.enabled:
            gap = float(spike.params["window_minutes"]) * 60
        parts.append(
            f"""
            SELECT record_id, 'b:' || product || ':' || CAST(isl AS VARCHAR) AS k FROM (
                SELECT record_id, product,
                       sum(brk) OVER (PARTITION BY product ORDER BY ts, record_id ROWS UNBOUNDED PRECEDING) AS isl
                FROM (SELECT record_id, product, ts,
                             CASE WHEN ts - lag(ts) OVER (PARTITION BY product ORDER BY ts, record_id) <= {gap}
                                  THEN 0 ELSE 1 END AS brk
                      FROM ({sus}) x
                      WHERE product IS NOT NULL AND EXISTS (
                          SELECT 1 FROM _cb_fired f WHERE f.record_id = x.record_id
                          AND f.code IN ('signup_burst', 'signup_spike'))))"""
        )
    if not parts:
        return "SELECT CAST(NULL AS VARCHAR) AS record_id, CAST(NULL AS VARCHAR) AS k WHERE false"
    return "\nUNION\n".join(parts)


def _ip_edges_sql() -> str:
    sus = "SELECT r.* FROM _cb_rec r JOIN _cb_score s USING (record_id) WHERE s.fraud_suspected"
    return f"""
        SELECT record_id, 'i:' || ip_n AS k FROM ({sus})
        WHERE ip_n IS NOT NULL AND ip_net NOT IN (SELECT ip_net FROM _cb_rotating)
        UNION
        SELECT DISTINCT x.record_id, 'i:' || v.ip_n AS k FROM ({sus}) x
        JOIN _cb_vis v ON v.user_n = x.user_n
        WHERE v.ip_n IS NOT NULL AND v.ip_net NOT IN (SELECT ip_net FROM _cb_rotating)"""


def cluster(sql: StageSQL, policy: Policy) -> None:
    """Fill ``_cb_subject(record_id, subject_id)`` and ``_cb_subjects`` (one row per subject).

    Two passes. First the records are grouped by the identifiers an actor owns (email, account,
    burst, card and day). Then IP addresses join those groups, except an address whose groups
    began far apart in time: a proxy or provider address used by different actors over months,
    which would otherwise chain unrelated fraudsters into one subject.
    """
    sql.table("_cb_edges", f"SELECT DISTINCT * FROM ({_edges_sql(policy)})")
    _propagate_labels(sql)
    if "ip" in policy.link_on:
        sql.table(
            "_cb_ip_edges",
            f"""
            WITH e AS (SELECT DISTINCT * FROM ({_ip_edges_sql()})),
                 grp AS (SELECT l.label, min(r.ts) AS first_ts FROM _cb_label l JOIN _cb_rec r USING (record_id)
                         GROUP BY l.label),
                 per_ip AS (SELECT e.k, max(g.first_ts) - min(g.first_ts) AS spread
                            FROM e JOIN _cb_label l USING (record_id) JOIN grp g USING (label) GROUP BY e.k)
            SELECT e.record_id, e.k FROM e JOIN per_ip USING (k)
            WHERE per_ip.spread <= {float(policy.ip_hub_days) * 86400}
            """
        )
        sql.append("_cb_edges", "SELECT * FROM _cb_ip_edges")
        sql.drop("_cb_ip_edges")
        _propagate_labels(sql)
    _subjects(sql, policy)


def _propagate_labels(sql: StageSQL) -> None:
    """Connected components of the suspected records over ``_cb_edges``, into ``_cb_label``."""
    sql.table("_cb_label", "SELECT record_id, record_id AS label FROM _cb_score WHERE fraud_suspected")
    for _ in range(MAX_ROUNDS):
        sql.table(
            "_cb_label_next",
            """
            WITH kl AS (SELECT e.k, min(l.label) AS label FROM _cb_edges e JOIN _cb_label l USING (record_id)
                        GROUP BY e.k),
                 nl AS (SELECT e.record_id, min(kl.label) AS label FROM _cb_edges e JOIN kl USING (k)
                        GROUP BY e.record_id),
                 m AS (SELECT l.record_id, least(l.label, coalesce(nl.label, l.label)) AS label
                       FROM _cb_label l LEFT JOIN nl USING (record_id))
            SELECT m.record_id, least(m.label, coalesce(j.label, m.label)) AS label
            FROM m LEFT JOIN m AS j ON j.record_id = m.label
            """
        )
        changed = sql.rows(
            "SELECT count(*) FROM _cb_label_next n JOIN _cb_label l USING (record_id) WHERE n.label <> l.label"
        )[0][0]
        sql.table("_cb_label", "SELECT * FROM _cb_label_next")
        if changed == 0:
            break
    else:
        raise OreError(f"corroborate: subject clustering did not settle in {MAX_ROUNDS} rounds")
    sql.drop("_cb_label_next")


def _subjects(sql: StageSQL, policy: Policy) -> None:
    sql.table(
        "_cb_subject",
        f"""
        WITH comp AS (SELECT label, count(*) AS n FROM _cb_label GROUP BY label HAVING count(*) >= {policy.min_records}),
             num AS (SELECT label, 'U' || lpad(CAST(row_number() OVER (ORDER BY n DESC, label) AS VARCHAR), 5, '0')
                                  AS subject_id FROM comp)
        SELECT l.record_id, num.subject_id FROM _cb_label l JOIN num USING (label)
        """
    )
    sql.table(
        "_cb_subjects",
        f"""
        WITH m AS (SELECT s.subject_id, r.* FROM _cb_subject s JOIN _cb_rec r USING (record_id)),
             -- an email or account made from the cardholder's own name is likely the victim's (an
             -- identity thief copies it): never the subject's name while another identifier exists
             ids AS (
                SELECT subject_id, CASE WHEN bool_and(email_from_name) THEN 4 ELSE 1 END AS rank,
                       'email' AS kind, email_n AS val, count(*) AS c
                FROM m WHERE email_n IS NOT NULL GROUP BY subject_id, email_n
                UNION ALL
                SELECT subject_id, CASE WHEN bool_and(user_from_name) THEN 5 ELSE 2 END, 'account', user_n, count(*)
                FROM m WHERE user_n IS NOT NULL GROUP BY subject_id, user_n
                UNION ALL
                SELECT subject_id, 3, 'ip', ip_n, count(*) FROM m WHERE ip_n IS NOT NULL GROUP BY subject_id, ip_n),
             ranked AS (SELECT *, row_number() OVER (PARTITION BY subject_id ORDER BY rank, c DESC, val) AS pos
                        FROM ids),
             agg AS (SELECT subject_id,
                            arg_min(val, pos) AS display_name,
                            string_agg(kind || ':' || val, ';' ORDER BY pos)
                                FILTER (WHERE pos <= {policy.max_identifiers}) AS identifiers,
                            count(*) AS n_identifiers
                     FROM ranked GROUP BY subject_id),
             cnt AS (SELECT subject_id, count(*) AS record_count, count(DISTINCT card_token) AS card_count
                     FROM m GROUP BY subject_id)
        SELECT cnt.subject_id,
               coalesce(agg.display_name, 'subject ' || cnt.subject_id) AS display_name,
               cnt.record_count, cnt.card_count,
               coalesce(agg.identifiers, '')
                   || CASE WHEN agg.n_identifiers > {policy.max_identifiers}
                           THEN ';+' || CAST(agg.n_identifiers - {policy.max_identifiers} AS VARCHAR) || ' more'
                           ELSE '' END AS identifiers
        FROM cnt LEFT JOIN agg USING (subject_id)
        """
    )
