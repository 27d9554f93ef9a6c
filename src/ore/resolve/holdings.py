"""Holdings linkage: which of the agency's holdings describe an identified person.

Register, convictions, employment and open cases all record a person by name, date of
birth and postcode (the register also by address), *as known then*: people move, and a
holding has the formal name where a lead has a nickname. They are stacked into one
table and linked, by one Splink model (section ``holdings`` of ``settings.yaml``, the
generic builder of ``ore.resolve.model``), to every distinct way a person's records name
them (``person_variant``: name, date of birth, postcode, address; a record's missing date
of birth or bare initial filled from the person's best values), so an old address or one
good spelling among typos can still meet the holding. The model is trained without
labels on this package's persons and the holdings: u by seeded random sampling, m by
expectation maximisation. Blocking on date of birth with a surname key or first initial
lets a name and date of birth link across a move; blocking on the postcode lets a name
and postcode link where the date of birth is missing; blocking on the full name keeps
only the pairs the veto could let through (a near date of birth or the same postcode
area), since at two million holdings namesakes elsewhere were most of the pairs scored;
a name alone never reaches the
threshold, and the settings' veto refuses a first name that disagrees outright without
an agreeing date of birth (a relative at the same address). Each link keeps the best
match probability and weight over the person's variants.

Households hold only an address and a count of children: each way a person's records give
their address is matched to them on the postcode, the street line and the flat, wherever
the flat was typed (no model: there are no names to weigh), with the fixed probabilities
``households`` in ``settings.yaml`` gives.
"""

from __future__ import annotations

import math

import duckdb

from ore.resolve.engine import Engine
from ore.resolve.leads import person_variants
from ore.resolve.model import ModelSpec, TrainedModel, load_settings, train
from ore.resolve.standard import premises_sql, standardise

# holding -> (table, ref column, has address, detail SQL)
HOLDINGS = {
    "register": ("ref_register", "register_id", True,
                 "concat_ws('; ', 'offence_type=' || offence_type, 'risk_level=' || risk_level, "
                 "'registered_on=' || CAST(registered_on AS VARCHAR))"),
    "convictions": ("ref_convictions", "conviction_ref", False,
                    "concat_ws('; ', 'offence_category=' || offence_category, 'disposal=' || disposal, "
                    "'offence_date=' || CAST(offence_date AS VARCHAR))"),
    "employment": ("ref_employment", "employment_ref", False,
                   "concat_ws('; ', 'occupation=' || occupation, 'sector=' || sector, "
                   "'works_with_children=' || CAST(works_with_children AS VARCHAR))"),
    "open_cases": ("ref_open_cases", "case_ref", False,
                   "concat_ws('; ', 'force_code=' || force_code, 'opened_on=' || CAST(opened_on AS VARCHAR), "
                   "'subject=' || subject)"),
}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def load_holdings(con: duckdb.DuckDBPyConnection, scon: duckdb.DuckDBPyConnection) -> int:
    """Copy the person holdings into ``scon`` as one table ``holding_raw``; returns its rows."""
    present = _tables(con)
    parts = []
    for holding, (table, ref, has_addr, detail) in HOLDINGS.items():
        if table not in present:
            continue
        addr = "address_line1" if has_addr else "CAST(NULL AS VARCHAR)"
        town = "town" if has_addr else "CAST(NULL AS VARCHAR)"
        parts.append(f"""SELECT '{holding}' || ':' || {ref} AS unique_id, '{holding}' AS holding, {ref} AS ref,
                                first_name, last_name, date_of_birth, {addr} AS address_line1, {town} AS town,
                                postcode, {detail} AS detail
                         FROM {table} WHERE {ref} IS NOT NULL""")
    if not parts:
        scon.execute("""CREATE OR REPLACE TABLE holding_raw (unique_id VARCHAR, holding VARCHAR, ref VARCHAR,
                        first_name VARCHAR, last_name VARCHAR, date_of_birth DATE, address_line1 VARCHAR,
                        town VARCHAR, postcode VARCHAR, detail VARCHAR)""")
        return 0
    arrow = con.sql(" UNION ALL ".join(parts) + " ORDER BY unique_id").to_arrow_table()
    scon.register("_ore_holding_arrow", arrow)
    scon.execute("CREATE OR REPLACE TABLE holding_raw AS SELECT DISTINCT ON (unique_id) * FROM _ore_holding_arrow "
                 "ORDER BY unique_id")
    scon.unregister("_ore_holding_arrow")
    return arrow.num_rows


def link_holdings(scon: duckdb.DuckDBPyConnection, spec: ModelSpec | None = None,
                  engine: Engine | None = None) -> tuple[TrainedModel | None, int]:
    """Link ``person_best`` to ``holding_raw``: writes ``holding_link`` (person_id, holding, ref,
    match_probability, match_weight, detail), the best-scoring pair per person and reference."""
    spec = spec or ModelSpec.from_settings("holdings")
    person_variants(scon, swap_names=bool(spec.extra.get("swap_names", False)))
    standardise(scon, "person_variant", "person_std",
                first_name="first_name", last_name="last_name", dob="dob", postcode="postcode",
                address="address")
    standardise(scon, "holding_raw", "holding_std", first_name="first_name", last_name="last_name",
                dob="date_of_birth", postcode="postcode", address="address_line1", town="town")
    # same columns on both sides, as Splink wants for linking
    scon.execute("ALTER TABLE person_std DROP COLUMN town")
    scon.execute("ALTER TABLE holding_std DROP COLUMN town")
    n_p = scon.execute("SELECT count(*) FROM person_std").fetchall()[0][0]
    n_h = scon.execute("SELECT count(*) FROM holding_std").fetchall()[0][0]
    scon.execute("""CREATE OR REPLACE TABLE holding_link (person_id VARCHAR, holding VARCHAR, ref VARCHAR,
                    match_probability DOUBLE, match_weight DOUBLE, detail VARCHAR)""")
    model: TrainedModel | None = None
    if n_p and n_h:
        model = train(spec, scon, ["person_std", "holding_std"], engine)
        pred = model.predict(threshold=spec.threshold)
        # which side is which: unique ids of holdings carry "holding:" prefixes, persons do not
        scon.execute(f"""
            INSERT INTO holding_link
            SELECT split_part(pv, '#', 1) AS person_id, h.holding, h.ref, max(p.match_probability),
                   max(p.match_weight), any_value(h.detail)
            FROM (SELECT CASE WHEN source_dataset_l = 'holdings_0' THEN unique_id_l ELSE unique_id_r END AS pv,
                         CASE WHEN source_dataset_l = 'holdings_0' THEN unique_id_r ELSE unique_id_l END AS hid,
                         match_probability, match_weight
                  FROM {pred.physical_name}) p
            JOIN holding_raw h ON h.unique_id = p.hid
            WHERE p.match_probability >= {spec.threshold}
            GROUP BY ALL
        """)
    _link_households(scon)
    links = scon.execute("SELECT count(*) FROM holding_link").fetchall()[0][0]
    return model, links


def _link_households(scon: duckdb.DuckDBPyConnection) -> None:
    if "holding_household" not in {r[0] for r in scon.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}:
        return
    cfg = load_settings()["households"]
    p_exact, p_similar = float(cfg["exact_probability"]), float(cfg["similar_probability"])
    p_flat = float(cfg["flat_unknown_probability"])
    sim = float(cfg["street_similarity"])

    def w(p: float) -> float:
        return math.log2(p / (1 - p))

    flat, street = premises_sql("address_line1")
    # only households in a postcode some person has (the match needs the same postcode): the
    # street normalisation is then run on thousands of addresses, not on the whole holding
    scon.execute(f"""
        CREATE OR REPLACE TEMP TABLE _hh AS
        SELECT *, nullif(regexp_extract(street, '^([0-9]+[A-Z]?)\\b', 1), '') AS house_no,
               count(*) OVER (PARTITION BY postcode, street) AS in_building
        FROM (SELECT address_line1 || '|' || postcode AS ref, {street} AS street, {flat} AS flat,
                     pc AS postcode, 'children_under_18=' || CAST(children_under_18 AS VARCHAR) AS detail
              FROM (SELECT *, regexp_replace(upper(postcode), '[^A-Z0-9]', '', 'g') AS pc FROM holding_household
                    WHERE address_line1 IS NOT NULL AND postcode IS NOT NULL)
              WHERE pc IN (SELECT postcode FROM person_std WHERE postcode IS NOT NULL))
    """)
    # the same street line (or the same number and a close street) in the same postcode; then the
    # flat: the same (or neither has one) is the home; two flats are two homes; a flat left out on
    # one side is the home only where the holding knows one household in that building, and then
    # less surely
    scon.execute(f"""
        INSERT INTO holding_link
        SELECT person_id, 'households', ref,
               CASE level WHEN 2 THEN {p_exact} WHEN 1 THEN {p_similar} ELSE {p_flat} END,
               CASE level WHEN 2 THEN {w(p_exact)} WHEN 1 THEN {w(p_similar)} ELSE {w(p_flat)} END, detail
        FROM (
            SELECT split_part(p.unique_id, '#', 1) AS person_id, h.ref, h.detail,
                   max(CASE WHEN p.flat IS NOT DISTINCT FROM h.flat THEN (CASE WHEN p.street = h.street THEN 2 ELSE 1 END)
                            ELSE 0 END) AS level
            FROM person_std p JOIN _hh h ON h.postcode = p.postcode
            WHERE (p.street = h.street
                   OR (p.house_no = h.house_no AND jaro_winkler_similarity(p.street, h.street) >= {sim}))
              AND (p.flat IS NOT DISTINCT FROM h.flat
                   OR ((p.flat IS NULL OR h.flat IS NULL) AND h.in_building = 1))
            GROUP BY ALL)
    """)
    scon.execute("DROP TABLE _hh")


def load_households(con: duckdb.DuckDBPyConnection, scon: duckdb.DuckDBPyConnection) -> int:
    if "ref_households" not in _tables(con):
        return 0
    arrow = con.sql("SELECT address_line1, postcode, children_under_18 FROM ref_households "
                    "ORDER BY address_line1, postcode").to_arrow_table()
    scon.register("_ore_hh_arrow", arrow)
    scon.execute("CREATE OR REPLACE TABLE holding_household AS SELECT * FROM _ore_hh_arrow")
    scon.unregister("_ore_hh_arrow")
    return arrow.num_rows
