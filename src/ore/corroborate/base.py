"""The stage's working tables (connection-local TEMP tables, prefixed ``_cb_``).

They normalise once what every indicator compares: identifiers lower-cased and blank as NULL,
IP networks, the cardholder's name split into tokens, the person each record was resolved to.
"""

from __future__ import annotations

import duckdb

from ore.errors import OreError

WORK_TABLES = ("_cb_rec", "_cb_vis", "_cb_names", "_cb_alerts", "_cb_rotating")


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return rows[0][0] > 0


def _ip_net(col: str, octets: int) -> str:
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN contains({col}, ':') THEN array_to_string(string_split(lower({col}), ':')[1:{2 * octets}], ':') "
        f"ELSE array_to_string(string_split({col}, '.')[1:{octets}], '.') END"
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


def build(
    con: duckdb.DuckDBPyConnection, package_id: str, ip_prefix_octets: int, rotating_min_ips: float = 4
) -> None:
    for name in ("leads", "resolved_records"):
        if not table_exists(con, name):
            stage = "ingest the package" if name == "leads" else "run resolve for the package"
            raise OreError(f"corroborate needs the table {name}: {stage} first")
    has_visits = table_exists(con, "visits")
    has_alerts = table_exists(con, "ref_card_alerts")

    # The cardholder name as lower-case letter tokens ("SURNAME, FIRST" reordered); no lambdas,
    # so that the same SQL can run on Spark.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _cb_rec AS
        WITH rr AS (SELECT record_id, min(person_id) AS person_id FROM resolved_records
                    WHERE package_id = $pkg GROUP BY record_id),
        l AS (
            SELECT l.*, rr.person_id,
                   nullif(trim(l.ip_address), '') AS ip_n,
                   upper(strip_accents(trim(coalesce(l.cardholder_name, '')))) AS ch_raw
            FROM leads l LEFT JOIN rr USING (record_id)
            WHERE l.package_id = $pkg),
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
                        ELSE regexp_split_to_array(ch_clean, '\\s+') END AS ch_tokens
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
            coalesce(ch_tokens[1], '') AS ch_first,
            coalesce(ch_tokens[len(ch_tokens)], '') AS ch_last
        FROM t
        """,
        {"pkg": package_id},
    )
    # Derived name columns: a surname key for counting people, the account-name stem, and
    # whether the account name is made from the person's own name.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _cb_rec AS
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
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _cb_vis AS
            SELECT user_n, ip_n, {_ip_net('ip_n', ip_prefix_octets)} AS ip_net, ts, day, product
            FROM (SELECT nullif(lower(trim(username)), '') AS user_n, nullif(trim(ip_address), '') AS ip_n,
                         epoch(visit_time) AS ts, CAST(visit_time AS DATE) AS day, product
                  FROM visits WHERE package_id = $pkg)
            WHERE user_n IS NOT NULL AND ts IS NOT NULL
            """,
            {"pkg": package_id},
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _cb_vis (user_n VARCHAR, ip_n VARCHAR, ip_net VARCHAR, ts DOUBLE, "
            "day DATE, product VARCHAR)"
        )
    if has_alerts:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _cb_alerts AS
            SELECT card_token, reported_on, coalesce(nullif(lower(trim(alert_type)), ''), 'reported') AS alert_type
            FROM ref_card_alerts WHERE card_token IS NOT NULL AND reported_on IS NOT NULL
            """
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _cb_alerts (card_token VARCHAR, reported_on DATE, alert_type VARCHAR)")
    # Networks of rotating proxies (in 2002, AOL's): each account there uses many addresses of the
    # network, for orders and visits alike, so one address is shared by many people who have
    # nothing to do with each other. Such addresses say nothing about who is behind an order.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _cb_rotating AS
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
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _cb_names AS
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


def drop(con: duckdb.DuckDBPyConnection) -> None:
    for name in WORK_TABLES + ("_cb_fired", "_cb_score", "_cb_edges", "_cb_label", "_cb_ip_edges", "_cb_label_next"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
