"""Standard person columns: the one shape every person-linkage model in ore compares.

Decides how a raw name, date of birth, postcode and address are written before any
comparison, so that "Bob", "BOB", "Robert" and "R" can be told apart from a
disagreement, and "bs10 1le", "BS101LE" from another postcode:

- names: upper case, letters only (``O'Connor`` -> ``OCONNOR``), titles dropped; a full
  name such as a card's ``cardholder_name`` is split into first token and last token;
  ``first_formal`` lists the formal names a first name can stand for, from the nickname
  table shipped with the package (``nicknames.csv``: ``BOB`` -> ``ROBERT``), so a holding's
  formal name meets a lead's nickname; ``last_phonetic`` is a Soundex-like key of the
  surname, used only for blocking.
- dates of birth: ``YYYYMMDD`` strings, so a one-digit typo is an edit distance of one.
- postcodes: upper case without spaces; ``pc_sector``, ``pc_outward`` and ``pc_area``
  (UK: ``BS101LE`` -> ``BS101``, ``BS10``, ``BS``) let a typo or a move within a district
  count for something without counting as the same address.
- addresses: upper case, punctuation dropped, street-type abbreviations spelled out
  (``Ave`` -> ``AVENUE``); the flat read from wherever it was typed ("Flat 21, 39 Elm Rd",
  "21/39 Elm Road", a second line "Flat 21") into ``flat``, leaving ``street`` (``39 ELM
  ROAD``) and ``house_no`` (``39``): a block's flats share a street line, not a home.

All of it is SQL run in DuckDB over whole tables (no per-row Python), except the
phonetic key, computed once per distinct surname.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import duckdb
import jellyfish
import pyarrow as pa

TITLES = ("MR", "MRS", "MS", "MISS", "DR", "PROF", "SIR", "REV", "MX", "LADY", "LORD")
SUFFIXES = ("JR", "SR", "II", "III", "IV", "JNR", "SNR")

# street-type abbreviations as typed -> as written in full
STREET_TYPES = {
    "AVE": "AVENUE", "AV": "AVENUE", "RD": "ROAD", "ST": "STREET", "STR": "STREET",
    "CRES": "CRESCENT", "CR": "CRESCENT", "CL": "CLOSE", "GDNS": "GARDENS", "GDN": "GARDEN",
    "DR": "DRIVE", "LN": "LANE", "PL": "PLACE", "SQ": "SQUARE", "CT": "COURT", "TER": "TERRACE",
    "TERR": "TERRACE", "GRO": "GROVE", "GR": "GROVE", "PK": "PARK", "WY": "WAY", "HSE": "HOUSE",
    "CTS": "COURTS", "MT": "MOUNT", "STN": "STATION", "N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST",
}


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, list[str]]:
    """Each known first name to the formal names it may stand for (a formal name to itself)."""
    out: dict[str, set[str]] = {}
    text = resources.files("ore.resolve").joinpath("nicknames.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        formal = row["formal"].strip().upper()
        out.setdefault(formal, set()).add(formal)
        for nick in row["nicknames"].split(";"):
            nick = nick.strip().upper()
            if nick:
                out.setdefault(nick, set()).add(formal)
    return {k: sorted(v) for k, v in sorted(out.items())}


def phonetic(name: str | None) -> str | None:
    """A Soundex key of a cleaned surname (blocking only: typos in later letters survive it)."""
    if not name:
        return None
    return jellyfish.soundex(name)


def _register_lookups(con: duckdb.DuckDBPyConnection) -> None:
    nick = nickname_table()
    con.register(
        "_ore_nicknames",
        pa.table({"name": list(nick), "formal": pa.array(list(nick.values()), type=pa.list_(pa.string()))}),
    )


def _clean_name_sql(expr: str) -> str:
    """Upper case letters and single spaces; apostrophes and hyphens joined, not split."""
    return (
        f"nullif(trim(regexp_replace(regexp_replace(upper(coalesce({expr}, '')), "
        f"'[''`.\\-]', '', 'g'), '[^A-Z]+', ' ', 'g')), '')"
    )


def _street_sql(expr: str) -> str:
    out = f"regexp_replace(upper(coalesce({expr}, '')), '[^A-Z0-9]+', ' ', 'g')"
    out = f"' ' || trim({out}) || ' '"
    for short, full in STREET_TYPES.items():
        out = f"replace({out}, ' {short} ', ' {full} ')"
    return f"nullif(trim({out}), '')"


# A flat as typed: "Flat 21", "Apt. 3", "Unit 4B", "Flat C"; and "21/39 Elm Road" (flat 21 of 39).
FLAT_WORD = r"\b(?:FLAT|FLT|APARTMENT|APPT|APT|UNIT|ROOM)\.?\s*(?:NO\.?\s*)?([0-9]+[A-Z]?|[A-Z])\b"
FLAT_SLASH = r"^\s*([0-9]+[A-Z]?)\s*/\s*([0-9])"


def premises_sql(line1: str, line2: str | None = None) -> tuple[str, str]:
    """SQL for (flat, street line) of an address typed over one or two lines.

    The flat is taken wherever it was typed: in line 1 ("Flat 21, 39 Elm Road", "21/39 Elm
    Road") or in line 2 ("39 Elm Road" / "Flat 21"); the street line is what is left, written
    as :func:`_street_sql` writes it. A line 2 that is not a flat (a locality) is ignored, and
    a line 1 that is only a flat takes its street from line 2.
    """
    u1 = f"upper(coalesce({line1}, ''))"
    u2 = f"upper(coalesce({line2}, ''))" if line2 else "''"
    flat = (f"nullif(coalesce(nullif(regexp_extract({u1}, '{FLAT_SLASH}', 1), ''), "
            f"nullif(regexp_extract({u1}, '{FLAT_WORD}', 1), ''), nullif(regexp_extract({u2}, '{FLAT_WORD}', 1), '')), '')")
    rest1 = f"regexp_replace(regexp_replace({u1}, '{FLAT_SLASH}', '\\2'), '{FLAT_WORD}', ' ', 'g')"
    rest2 = f"regexp_replace({u2}, '{FLAT_WORD}', ' ', 'g')"
    street = f"CASE WHEN regexp_matches({rest1}, '[A-Z0-9]') THEN {rest1} ELSE {rest2} END"
    return flat, _street_sql(street)


def standardise(
    con: duckdb.DuckDBPyConnection,
    source: str,
    target: str,
    *,
    full_name: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    dob: str | None = None,
    postcode: str | None = None,
    address: str | None = None,
    address2: str | None = None,
    town: str | None = None,
    keep: tuple[str, ...] = (),
    uk_postcodes: bool = True,
) -> None:
    """Write ``target`` from relation ``source`` in the standard person columns.

    Each argument is a SQL expression over ``source``. ``full_name`` (e.g. a card's
    cardholder name) is preferred where present; ``first_name``/``last_name`` fill in when it
    is empty. ``dob`` may be a DATE or a ``YYYYMMDD`` / ``YYYY-MM-DD`` string. ``address2`` is a
    second address line, read only for a flat. ``keep`` lists columns of ``source`` carried over
    unchanged (``unique_id`` always is). The address comes out as ``street`` (the line without
    the flat), ``flat``, ``house_no`` and ``address`` (``FLAT 21 39 ELM ROAD``: both, in a form
    this function reads back unchanged).
    """
    _register_lookups(con)
    null = "CAST(NULL AS VARCHAR)"
    fn = _clean_name_sql(first_name) if first_name else null
    ln = _clean_name_sql(last_name) if last_name else null
    full = _clean_name_sql(full_name) if full_name else null
    titles = "|".join(TITLES)
    suffixes = "|".join(SUFFIXES)
    dob_sql = null
    if dob:
        dob_sql = (
            f"nullif(regexp_replace(CAST({dob} AS VARCHAR), '[^0-9]', '', 'g'), '')"
        )
    pc = f"nullif(regexp_replace(upper(coalesce(CAST({postcode} AS VARCHAR), '')), '[^A-Z0-9]', '', 'g'), '')" if postcode else null
    if uk_postcodes:
        outward = "CASE WHEN length(postcode) >= 5 THEN left(postcode, length(postcode) - 3) END"
        sector = "CASE WHEN length(postcode) >= 5 THEN left(postcode, length(postcode) - 2) END"
        area = "nullif(regexp_extract(postcode, '^[A-Z]{1,2}'), '')"
    else:  # plain postcodes (e.g. Australian four-digit): district = all but the last digit
        outward = "CASE WHEN length(postcode) >= 3 THEN left(postcode, length(postcode) - 1) END"
        sector = "postcode"
        area = "CASE WHEN length(postcode) >= 2 THEN left(postcode, 1) END"
    flat, street = premises_sql(address, address2) if address else (null, null)
    town_sql = _clean_name_sql(town) if town else null
    kept = "".join(f", {k}" for k in keep)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ore_std_a AS
        SELECT unique_id{kept},
               list_filter(string_split(coalesce({full}, ''), ' '),
                           lambda t: t <> '' AND NOT regexp_full_match(t, '{titles}|{suffixes}')) AS _full_tokens,
               {fn} AS _fn, {ln} AS _ln,
               {dob_sql} AS dob, {pc} AS postcode, {street} AS street, {flat} AS flat, {town_sql} AS town
        FROM {source}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ore_std_b AS
        SELECT * EXCLUDE (_full_tokens, _fn, _ln),
               CASE WHEN len(_full_tokens) >= 2 THEN _full_tokens[1]
                    WHEN len(_full_tokens) = 1 THEN NULL
                    ELSE split_part(_fn, ' ', 1) END AS first_name,
               CASE WHEN len(_full_tokens) >= 1 THEN _full_tokens[-1]
                    ELSE replace(_ln, ' ', '') END AS last_name
        FROM _ore_std_a
    """)
    surnames = [r[0] for r in con.execute(
        "SELECT DISTINCT last_name FROM _ore_std_b WHERE last_name IS NOT NULL ORDER BY 1").fetchall()]
    con.register("_ore_phonetic", pa.table({"name": surnames, "key": [phonetic(s) for s in surnames]}))
    con.execute(f"""
        CREATE OR REPLACE TABLE {target} AS
        SELECT b.*,
               CASE WHEN b.street IS NOT NULL AND b.flat IS NOT NULL THEN 'FLAT ' || b.flat || ' ' || b.street
                    ELSE b.street END AS address,
               coalesce(n.formal, CASE WHEN b.first_name IS NOT NULL THEN [b.first_name] END) AS first_formal,
               p.key AS last_phonetic,
               nullif(regexp_extract(b.street, '^([0-9]+[A-Z]?)\\b', 1), '') AS house_no,
               {outward} AS pc_outward, {sector} AS pc_sector, {area} AS pc_area
        FROM _ore_std_b b
        LEFT JOIN _ore_nicknames n ON n.name = b.first_name
        LEFT JOIN _ore_phonetic p ON p.name = b.last_name
        ORDER BY b.unique_id
    """)
    for t in ("_ore_std_a", "_ore_std_b"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    for v in ("_ore_phonetic", "_ore_nicknames"):
        con.unregister(v)
