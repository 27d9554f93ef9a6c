"""The stage's working tables (connection-local TEMP tables, prefixed ``_cb_``).

They normalise once what every indicator compares: identifiers lower-cased and blank as NULL,
IP networks, the cardholder's name split into tokens, the person each record was resolved to.
"""

from __future__ import annotations

from ore.errors import OreError
from ore.stagesql import StageSQL, lit

WORK_TABLES = ("_cb_rec", "_cb_vis", "_cb_names", "_cb_alerts", "_cb_rotating")
INPUTS = ("leads", "resolved_records", "visits", "ref_card_alerts")


def _ip_net(col: str, octets: int) -> str:
    """The first ``octets`` parts of an IPv4 address (twice as many of an IPv6 one): its network.

    A regular expression, not a split list sliced, so that it means the same on Spark."""
    def first(sep: str, n: int) -> str:
        return f"'^[^{sep}]*(?:[{sep}][^{sep}]*){{0,{n - 1}}}'"
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN contains({col}, ':') THEN regexp_extract(lower({col}), {first(':', 2 * octets)}, 0) "
        f"ELSE regexp_extract({col}, {first('.', octets)}, 0) END"
    )


def _letters(expr: str) -> str:
    return f"regexp_replace(lower(strip_accents(coalesce({expr}, ''))), '[^a-z]', '', 'g')"


def _from_name(stem: str) -> str:
    """Whether an account-name stem is made from the record's own names (typed or cardholder's)."""
    return f"""((length(ch_last) >= 3 AND contains({stem}, ch_last))
                OR (length(tlast) >= 3 AND contains({stem}, tlast))
                OR (length(ch_first) >= 3 AND contains({stem}, ch_first))
                OR (length(tfirst) >= 3 AND contains({stem}, tfirst))
                OR (length({stem}) >= 3 AND (contains(ch_first || ch_last, {stem}) OR contains(tfirst || tlast, {stem})))
                OR (length({stem}) >= 3 AND greatest(jaro_winkler_similarity({stem}, ch_first),
                                                   jaro_winkler_similarity({stem}, ch_last),
                                                   jaro_winkler_similarity({stem}, tfirst),
                                                   jaro_winkler_similarity({stem}, tlast)) >= 0.85))"""


def build(sql: StageSQL, package_id: str, ip_prefix_octets: int, rotating_min_ips: float = 4) -> None:
    for name in ("leads", "resolved_records"):
        if not sql.exists(name):
            stage = "ingest the package" if name == "leads" else "run resolve for the package"
            raise OreError(f"corroborate needs the table {name}: {stage} first")
    has_visits = sql.exists("visits")
    has_alerts = sql.exists("ref_card_alerts")
    sql.inputs(package_id, *INPUTS)
    pkg = lit(package_id)

    # The cardholder name as lower-case letter tokens ("SURNAME, FIRST" reordered); no lambdas,
    # no list indexing, so that the same SQL can run on Spark.
    sql.table(
        "_cb_rec",
        f"""
        WITH rr AS (SELECT record_id, min(person_id) AS person_id FROM resolved_records
                    WHERE package_id = {pkg} GROUP BY record_id),
        l AS (
            SELECT l.*, rr.person_id,
                   nullif(trim(l.ip_address), '') AS ip_n,
                   upper(strip_accents(trim(coalesce(l.cardholder_name, '')))) AS ch_raw
            FROM leads l LEFT JOIN rr USING (record_id)
            WHERE l.package_id = {pkg}),
        n AS (
            SELECT l.*,
                   trim(regexp_replace(lower(
                       CASE WHEN contains(ch_raw, ',')
                            THEN trim(split_part(ch_raw, ',', 2)) || ' ' || trim(split_part(ch_raw, ',', 1))
                            ELSE ch_raw END), '[^a-z\\s]', '', 'g')) AS ch_clean
            FROM l),
        t AS (
            SELECT n.*,
                   CASE WHEN ch_clean = '' THEN CAST([] AS VARCHAR[])
                        ELSE string_split_regex(ch_clean, '\\s+') END AS ch_tokens
            FROM n)
        SELECT
            record_id,
            card_token,
            coalesce(person_id, 'card:' || card_token) AS person_key,
            person_id,
            transaction_time AS t,
            epoch(transaction_time) AS ts,
            CAST(transaction_time AS DATE) AS day,
            nullif(trim(product), '') AS product,
            lower(coalesce(status, '')) AS status,
            lower(coalesce(status, '')) IN ('approved', 'refunded', 'chargeback') AS completed,
            nullif(lower(trim(email)), '') AS email_n,
            nullif(lower(trim(username)), '') AS user_n,
            ip_n,
            {_ip_net('ip_n', ip_prefix_octets)} AS ip_net,
            nullif(upper(trim(ip_country)), '') AS ip_cc,
            nullif(upper(trim(country)), '') AS cc,
            nullif(regexp_replace(upper(coalesce(postcode, '')), '[^A-Z0-9]', '', 'g'), '') AS pc,
            trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) AS typed_name,
            coalesce(cardholder_name, '') AS cardholder_name,
            {_letters('first_name')} AS tfirst,
            {_letters('last_name')} AS tlast,
            ch_tokens,
            regexp_extract(ch_clean, '^\\S+', 0) AS ch_first,
            regexp_extract(ch_clean, '\\S+$', 0) AS ch_last
        FROM t
        """,
    )
    # Derived name columns: a surname key for counting people, the account-name stem, and
    # whether the account name is made from the person's own name.
    sql.table(
        "_cb_rec",
        f"""
        WITH a AS (
            SELECT *,
                   card_token || '|' || coalesce(user_n, email_n, '') AS thread,
                   -- a coarse surname key (first and last letter) that survives typing errors
                   CASE WHEN length(coalesce(nullif(ch_last, ''), tlast)) >= 2
                        THEN left(coalesce(nullif(ch_last, ''), tlast), 1) || right(coalesce(nullif(ch_last, ''), tlast), 1)
                        END AS sname,
                   regexp_replace(coalesce(user_n, split_part(email_n, '@', 1), ''), '[^a-z]', '', 'g') AS stem,
                   regexp_replace(coalesce(user_n, ''), '[^a-z]', '', 'g') AS user_stem,
                   regexp_replace(coalesce(split_part(email_n, '@', 1), ''), '[^a-z]', '', 'g') AS email_stem,
                   {_letters('user_n')} || ' ' || {_letters("split_part(email_n, '@', 1)")} AS acct_text
            FROM _cb_rec)
        SELECT *,
               {_from_name('stem')} AS stem_from_name,
               {_from_name('user_stem')} AS user_from_name,
               {_from_name('email_stem')} AS email_from_name,
               ((length(ch_last) >= 3 AND contains(acct_text, ch_last))
                OR (length(ch_first) >= 3 AND contains(acct_text, ch_first))) AS acct_from_name
        FROM a
        """
    )
    if has_visits:
        sql.table(
            "_cb_vis",
            f"""
            SELECT user_n, ip_n, {_ip_net('ip_n', ip_prefix_octets)} AS ip_net, ts, day, product
            FROM (SELECT nullif(lower(trim(username)), '') AS user_n, nullif(trim(ip_address), '') AS ip_n,
                         epoch(visit_time) AS ts, CAST(visit_time AS DATE) AS day, product
                  FROM visits WHERE package_id = {pkg})
            WHERE user_n IS NOT NULL AND ts IS NOT NULL
            """,
        )
    else:
        sql.table("_cb_vis", "SELECT CAST(NULL AS VARCHAR) AS user_n, CAST(NULL AS VARCHAR) AS ip_n, "
                  "CAST(NULL AS VARCHAR) AS ip_net, CAST(NULL AS DOUBLE) AS ts, CAST(NULL AS DATE) AS day, "
                  "CAST(NULL AS VARCHAR) AS product WHERE false")
    if has_alerts:
        sql.table(
            "_cb_alerts",
            """
            SELECT card_token, reported_on, coalesce(nullif(lower(trim(alert_type)), ''), 'reported') AS alert_type
            FROM ref_card_alerts WHERE card_token IS NOT NULL AND reported_on IS NOT NULL
            """
        )
    else:
        sql.table("_cb_alerts", "SELECT CAST(NULL AS VARCHAR) AS card_token, CAST(NULL AS DATE) AS reported_on, "
                  "CAST(NULL AS VARCHAR) AS alert_type WHERE false")
    # Networks of rotating proxies (in 2002, AOL's): each account there uses many addresses of the
    # network, for orders and visits alike, so one address is shared by many people who have
    # nothing to do with each other. Such addresses say nothing about who is behind an order.
    sql.table(
        "_cb_rotating",
        f"""
        WITH u AS (SELECT user_n, ip_net, ip_n FROM _cb_rec WHERE user_n IS NOT NULL AND ip_n IS NOT NULL
                   UNION
                   SELECT user_n, ip_net, ip_n FROM _cb_vis WHERE ip_n IS NOT NULL),
             a AS (SELECT ip_net, user_n, count(DISTINCT ip_n) AS k FROM u GROUP BY ALL),
             i AS (SELECT ip_net, ip_n, count(DISTINCT user_n) AS k FROM u GROUP BY ALL),
             ai AS (SELECT ip_net, count(*) AS accounts, median(k) AS ips_per_account FROM a GROUP BY ip_net),
             ia AS (SELECT ip_net, median(k) AS accounts_per_ip FROM i GROUP BY ip_net)
        -- many accounts, each using several of the network's addresses, each address used by
        -- several accounts: a fraudster's few proxies serve few accounts, or one address each
        SELECT ip_net FROM ai JOIN ia USING (ip_net)
        WHERE accounts >= 10 AND ips_per_account >= {float(rotating_min_ips)} AND accounts_per_ip >= 3
        """
    )
    # How well the typed surname matches any token of the cardholder name (an initial matches its
    # letter; one typing error matches; otherwise Jaro-Winkler). Records without both names get no row.
    sql.table(
        "_cb_names",
        """
        WITH tok AS (SELECT record_id, tlast, unnest(ch_tokens) AS tok FROM _cb_rec WHERE tlast <> '')
        SELECT record_id,
               max(CASE WHEN tok = '' THEN 0.0
                        WHEN length(tlast) = 1 OR length(tok) = 1
                             THEN CASE WHEN left(tok, 1) = left(tlast, 1) THEN 1.0 ELSE 0.0 END
                        WHEN length(tlast) >= 2 AND length(tok) >= 2 AND damerau_levenshtein(tlast, tok) <= 1 THEN 1.0
                        ELSE jaro_winkler_similarity(tlast, tok) END) AS best
        FROM tok GROUP BY record_id
        """
    )


def drop(sql: StageSQL) -> None:
    sql.drop(*WORK_TABLES, "_cb_fired", "_cb_score", "_cb_edges", "_cb_label", "_cb_ip_edges", "_cb_label_next")
