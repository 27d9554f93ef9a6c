"""How the watch compares emails, account names, merchants and products: one SQL expression each.

The watchlist side (a convicted person's old records) and the feed side (new purchases)
pass through the same expression, in the same engine, so they cannot drift apart; a
flag an analyst types is normalised by running the same SQL (``normalise``). The SQL
uses only functions DuckDB and Spark SQL share (lower, upper, trim, regexp_replace,
regexp_extract, replace, CASE), no lambdas, so the Spark screen (``ore.watch.spark_engine``) reuses it.

- email: lower-cased and trimmed; a ``+tag`` after the mailbox name dropped (``jo+x@`` and
  ``jo@`` reach one mailbox at every large provider); for Gmail, dots in the mailbox name
  dropped and googlemail.com read as gmail.com (Gmail ignores both). Someone who comes
  back with ``j.o.smith+new@gmail.com`` is the ``josmith@gmail.com`` of the old package.
- username: lower-cased and trimmed (sites treat account names case-blind).
- merchant and product: upper-cased, every run of other than A-Z and 0-9 read as one space,
  trimmed: ``KEYZ*AV SERVICES`` is ``KEYZ AV SERVICES`` (billing descriptors are retyped by
  every processor).
Blank is NULL: an empty field matches nothing.
"""

from __future__ import annotations

import duckdb

GMAIL = ("gmail.com", "googlemail.com")


def replace_all(expr: str, pattern: str, replacement: str, dialect: str = "duckdb") -> str:
    """SQL replacing every match: DuckDB needs the ``'g'`` flag, Spark replaces all by default."""
    flag = ", 'g'" if dialect == "duckdb" else ""
    return f"regexp_replace({expr}, '{pattern}', '{replacement}'{flag})"


def email_sql(col: str, dialect: str = "duckdb") -> str:
    """SQL: the normalised email in column ``col`` (NULL if blank).

    String positions, not regular expressions: this runs on every row of a feed, and is
    about five times cheaper so. A value that is not ``local@domain`` with one ``@`` is
    only lower-cased and trimmed.
    """
    e = f"lower(trim({col}))"
    at = f"instr({e}, '@')"
    local = f"left({e}, {at} - 1)"
    domain = f"substr({e}, {at} + 1)"
    plus = f"instr({local}, '+')"
    untagged = f"CASE WHEN {plus} > 1 THEN left({local}, {plus} - 1) ELSE {local} END"
    gmail = ", ".join(f"'{d}'" for d in GMAIL)
    return (
        f"nullif(CASE WHEN {at} <= 1 OR {at} = length({e}) OR instr({domain}, '@') > 0 OR {plus} = 1 THEN {e} "
        f"WHEN {domain} IN ({gmail}) THEN replace({untagged}, '.', '') || '@gmail.com' "
        f"ELSE {untagged} || '@' || {domain} END, '')"
    )


def username_sql(col: str, dialect: str = "duckdb") -> str:
    """SQL: the normalised account name in column ``col`` (NULL if blank)."""
    return f"nullif(lower(trim({col})), '')"


def descriptor_sql(col: str, dialect: str = "duckdb") -> str:
    """SQL: a merchant or product name as compared (upper case, runs of other characters one space)."""
    return f"nullif(trim({replace_all(f'upper({col})', '[^A-Z0-9]+', ' ', dialect)}), '')"


KINDS = {"email": email_sql, "username": username_sql, "merchant": descriptor_sql, "product": descriptor_sql}


def normalise(kind: str, value: str | None) -> str | None:
    """One value normalised by the same SQL the screen runs (for flags typed by an analyst, and tests)."""
    if value is None:
        return None
    rows = duckdb.execute(f"SELECT {KINDS[kind]('v')} FROM (SELECT CAST($v AS VARCHAR) AS v)", {"v": value}).fetchall()
    return rows[0][0]
