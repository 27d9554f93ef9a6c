"""Lead deduplication: which accepted records of a package name the same identity.

The identity a record names is the card's holder: ``cardholder_name`` (the name typed
for the card) is the record's name, and the subscriber name as typed
(``first_name``/``last_name``) stands in only where the card name is empty, because a
fraudster using a stolen card types names unlike the cardholder's. Records are compared
(``ore.resolve.model``, section ``leads`` of ``settings.yaml``) on that name, date of
birth, billing postcode and address (as one "residence" comparison), the card token (one
card's records name one cardholder) and the email (a subscriber's login; account names
are not compared, since sites truncate them and namesakes share them).

A carder reuses one email across many stolen cards, so email agreement never decides
alone: the settings' veto scores 0 any pair on another card, with no address in the same
postcode area and no agreeing date of birth, whatever the names and email say. Pairs at
or above ``leads.threshold`` are joined by connected components; a resulting person whose
records hold two dates of birth that disagree outright (two namesakes chained through
records without one) is rebuilt from its strong links only (card, email, date of birth).

Each person gets its best-known values: the most frequent full first name and surname,
date of birth, and address with its postcode, over its records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from ore.resolve.engine import Engine
from ore.resolve.model import ModelSpec, TrainedModel, train
from ore.resolve.standard import FLAT_WORD, standardise


@dataclass
class LeadResolution:
    model: TrainedModel | None
    records: int
    persons: int
    pairs_scored: int


def load_leads(con: duckdb.DuckDBPyConnection, scon: duckdb.DuckDBPyConnection, package_id: str) -> int:
    """Copy the package's accepted records into ``scon`` as ``lead_raw`` (ordered by record_id)."""
    arrow = con.sql(
        """SELECT record_id AS unique_id, cardholder_name, first_name AS typed_first, last_name AS typed_last,
                  date_of_birth, address_line1, address_line2, town, postcode, card_token,
                  nullif(lower(trim(email)), '') AS email, nullif(lower(trim(username)), '') AS username
           FROM leads WHERE package_id = $pid
           -- ingest keeps record ids unique; should a table ever hold a repeat, the first line
           -- stands (Splink needs unique ids, and two records under one id would chain people)
           QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY line) = 1
           ORDER BY record_id""",
        params={"pid": package_id},
    ).to_arrow_table()
    scon.register("_ore_lead_arrow", arrow)
    scon.execute("CREATE OR REPLACE TABLE lead_raw AS SELECT * FROM _ore_lead_arrow")
    scon.unregister("_ore_lead_arrow")
    return arrow.num_rows


def dedupe_leads(scon: duckdb.DuckDBPyConnection, spec: ModelSpec | None = None,
                 engine: Engine | None = None) -> LeadResolution:
    """Resolve ``lead_raw`` into ``lead_person(record_id, person_id)`` and ``person_best``
    (the pairs scored on ``engine``: DuckDB unless given)."""
    spec = spec or ModelSpec.from_settings("leads")
    n = scon.execute("SELECT count(*) FROM lead_raw").fetchall()[0][0]
    standardise(
        scon, "lead_raw", "lead_std",
        full_name="cardholder_name", first_name="typed_first", last_name="typed_last",
        dob="date_of_birth", postcode="postcode", address="address_line1", address2="address_line2", town="town",
        keep=("card_token", "email", "username"),
    )
    model: TrainedModel | None = None
    pairs = 0
    if n >= 2:
        model = train(spec, scon, ["lead_std"], engine)
        pred = model.predict(threshold=min(0.01, spec.threshold))
        pairs = scon.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchall()[0][0]
        clusters = model.cluster(pred)
        scon.execute(f"CREATE OR REPLACE TABLE _lead_cluster AS SELECT unique_id, cluster_id FROM {clusters.physical_name}")
        _split_conflicts(scon, pred.physical_name, spec.threshold)
    else:
        scon.execute("CREATE OR REPLACE TABLE _lead_cluster AS SELECT unique_id, unique_id AS cluster_id FROM lead_std")
    # person ids: numbered in order of each cluster's first record id (deterministic)
    scon.execute("""
        CREATE OR REPLACE TABLE lead_person AS
        WITH c AS (SELECT cluster_id, min(unique_id) AS first_id FROM _lead_cluster GROUP BY cluster_id),
             r AS (SELECT cluster_id, 'PER' || lpad(CAST(row_number() OVER (ORDER BY first_id) AS VARCHAR), 6, '0')
                          AS person_id FROM c)
        SELECT l.unique_id AS record_id, r.person_id
        FROM _lead_cluster l JOIN r USING (cluster_id) ORDER BY record_id
    """)
    _best_values(scon)
    persons = scon.execute("SELECT count(*) FROM person_best").fetchall()[0][0]
    return LeadResolution(model, n, persons, pairs)


def _split_conflicts(scon: duckdb.DuckDBPyConnection, predictions: str, threshold: float) -> None:
    """Undo chains between namesakes: a person whose records hold two dates of birth that
    disagree outright (not a typo, not day and month swapped) is two people joined through
    records that lack one (say a parent and child of one name at one address). Such a
    cluster is rebuilt from its strong links only: same card, same email, or an agreeing
    date of birth; records held only by weaker links (name and address) stay with
    whichever part they were strongly tied to, or alone."""
    bad = [r[0] for r in scon.execute("""
        WITH d AS (SELECT DISTINCT c.cluster_id, s.dob FROM _lead_cluster c JOIN lead_std s USING (unique_id)
                   WHERE s.dob IS NOT NULL)
        SELECT DISTINCT a.cluster_id FROM d a JOIN d b ON a.cluster_id = b.cluster_id AND a.dob < b.dob
        WHERE damerau_levenshtein(a.dob, b.dob) > 2
          AND NOT (left(a.dob, 4) = left(b.dob, 4) AND substr(a.dob, 5, 2) = substr(b.dob, 7, 2)
                   AND substr(a.dob, 7, 2) = substr(b.dob, 5, 2))
        ORDER BY 1""").fetchall()]
    if not bad:
        return
    scon.execute("CREATE OR REPLACE TEMP TABLE _bad_cluster AS SELECT unnest($1::VARCHAR[]) AS cluster_id", [bad])
    members = scon.execute("""SELECT c.cluster_id, c.unique_id FROM _lead_cluster c JOIN _bad_cluster USING (cluster_id)
                              ORDER BY 1, 2""").fetchall()
    edges = scon.execute(f"""
        SELECT p.unique_id_l, p.unique_id_r FROM {predictions} p
        JOIN _lead_cluster c ON c.unique_id = p.unique_id_l JOIN _bad_cluster USING (cluster_id)
        WHERE p.match_probability >= {threshold}
          AND (p.gamma_card > 0 OR p.gamma_account > 0 OR p.gamma_dob >= 2)
        ORDER BY 1, 2""").fetchall()
    parent = {u: u for _, u in members}

    def find(u: str) -> str:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for a, b in edges:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    new = pa.table({"unique_id": [u for _, u in members], "cluster_id": [f"{c}/{find(u)}" for c, u in members]})
    scon.register("_ore_split", new)
    scon.execute("""UPDATE _lead_cluster SET cluster_id = s.cluster_id FROM _ore_split s
                    WHERE _lead_cluster.unique_id = s.unique_id""")
    scon.unregister("_ore_split")
    scon.execute("DROP TABLE _bad_cluster")


def _mode(value: str, where: str = "TRUE") -> str:
    """SQL for the most frequent non-null ``value`` per person. Ties go to the value more
    frequent in the whole package (a typo is rare, the real spelling is not), then the
    smallest."""
    return f"""
        SELECT person_id, arg_max(v, {{'n': n, 'g': g, 'r': -r}}) AS v FROM (
            SELECT person_id, v, n, sum(n) OVER (PARTITION BY v) AS g,
                   rank() OVER (PARTITION BY person_id ORDER BY v) AS r
            FROM (SELECT person_id, v, count(*) AS n
                  FROM (SELECT p.person_id, {value} AS v FROM lead_person p
                        JOIN lead_std s ON s.unique_id = p.record_id
                        JOIN lead_raw r ON r.unique_id = p.record_id WHERE {where})
                  WHERE v IS NOT NULL GROUP BY person_id, v))
        GROUP BY person_id"""


def _best_values(scon: duckdb.DuckDBPyConnection) -> None:
    """``person_best``: each person's most frequent values, standard and as typed."""
    scon.execute(f"""
        CREATE OR REPLACE TABLE person_best AS
        WITH fn AS ({_mode("s.first_name", "length(s.first_name) > 1")}),
             fi AS ({_mode("s.first_name")}),
             ln AS ({_mode("s.last_name", "length(s.last_name) > 1")}),
             li AS ({_mode("s.last_name")}),
             dob AS ({_mode("r.date_of_birth")}),
             ad AS ({_mode("s.address || '|' || coalesce(s.postcode, '')")}),
             pc AS ({_mode("s.postcode")}),
             n AS (SELECT person_id, count(*) AS record_count FROM lead_person GROUP BY person_id)
        SELECT n.person_id, coalesce(fn.v, fi.v) AS first_name, coalesce(ln.v, li.v) AS last_name, dob.v AS date_of_birth,
               CASE WHEN ad.v IS NOT NULL THEN split_part(ad.v, '|', 1) END AS address,
               coalesce(nullif(split_part(ad.v, '|', 2), ''), pc.v) AS postcode, n.record_count
        FROM n LEFT JOIN fn USING (person_id) LEFT JOIN fi USING (person_id) LEFT JOIN ln USING (person_id) LEFT JOIN li USING (person_id)
        LEFT JOIN dob USING (person_id) LEFT JOIN ad USING (person_id) LEFT JOIN pc USING (person_id)
        ORDER BY person_id
    """)
    # values as typed, for people to read: the most frequent raw spelling behind the best values
    scon.execute(f"""
        CREATE OR REPLACE TABLE person_display AS
        WITH nm AS ({_mode("coalesce(r.cardholder_name, concat_ws(' ', r.typed_first, r.typed_last))",
                           "s.first_name IS NOT DISTINCT FROM b.first_name AND s.last_name IS NOT DISTINCT FROM b.last_name")
                     .replace("WHERE", "JOIN person_best b ON b.person_id = p.person_id WHERE", 1)}),
             ad AS ({_mode(f"CASE WHEN regexp_matches(upper(coalesce(r.address_line2, '')), '{FLAT_WORD}') "
                           "THEN r.address_line2 || ', ' || r.address_line1 ELSE r.address_line1 END "
                           "|| '|' || coalesce(r.town, '')",
                           "s.address IS NOT DISTINCT FROM b.address AND s.postcode IS NOT DISTINCT FROM b.postcode")
                     .replace("WHERE", "JOIN person_best b ON b.person_id = p.person_id WHERE", 1)})
        -- no one record may give both best names (first from one, surname from another): then the
        -- best names themselves, so that nobody is shown without a name
        SELECT b.person_id, coalesce(nm.v, nullif(concat_ws(' ', b.first_name, b.last_name), '')) AS display_name,
               split_part(ad.v, '|', 1) AS address_line1,
               nullif(split_part(ad.v, '|', 2), '') AS town
        FROM person_best b LEFT JOIN nm USING (person_id) LEFT JOIN ad USING (person_id)
        ORDER BY person_id
    """)


def person_variants(scon: duckdb.DuckDBPyConnection, swap_names: bool = False) -> None:
    """``person_variant``: each distinct way a person's records name them (with the person's
    best values where a record gives only an initial or no date of birth), for linking to
    holdings that may know an older address or spelling. ``unique_id`` is ``person_id#n``.
    With ``swap_names``, each full name is also tried the other way round."""
    swap = "TRUE" if swap_names else "FALSE"
    scon.execute(f"""
        CREATE OR REPLACE TABLE person_variant AS
        WITH v AS (
            SELECT DISTINCT p.person_id,
                   CASE WHEN length(s.first_name) > 1 THEN s.first_name ELSE coalesce(b.first_name, s.first_name) END
                       AS first_name,
                   CASE WHEN length(s.last_name) > 1 THEN s.last_name ELSE coalesce(b.last_name, s.last_name) END
                       AS last_name,
                   coalesce(s.dob, strftime(b.date_of_birth, '%Y%m%d')) AS dob, s.postcode, s.address
            FROM lead_person p JOIN lead_std s ON s.unique_id = p.record_id JOIN person_best b USING (person_id)
            UNION
            SELECT person_id, first_name, last_name, strftime(date_of_birth, '%Y%m%d'), postcode, address
            FROM person_best),
        w AS (
            SELECT * FROM v
            UNION  -- names typed surname first ("JENKINS RICHARD"), when asked for
            SELECT person_id, last_name, first_name, dob, postcode, address FROM v
            WHERE {swap} AND length(first_name) > 1 AND length(last_name) > 1)
        SELECT person_id || '#' || CAST(row_number() OVER (PARTITION BY person_id
                   ORDER BY first_name, last_name, dob, postcode, address) AS VARCHAR) AS unique_id, *
        FROM w ORDER BY unique_id
    """)


def tidy(value: Any) -> Any:
    """Title-case a value typed all in upper or all in lower case; leave mixed case alone."""
    if not isinstance(value, str) or not value:
        return value
    if value.isupper() or value.islower():
        return value.title()
    return value
