"""Row-level security that looks up one row, not the whole table.

The policies of 0002 and 0100 let a row through when its person, case or watch subject may be
seen, written as ``... OR EXISTS (SELECT ...)`` over a table that has a policy of its own.
PostgreSQL cannot turn an EXISTS under an OR into a join and, at 400,000 persons, chose to
build the whole visible set for every query (about half a second for one person's records;
20 s per page under load). The same decision is now a function of one key, answered by
an index lookup: ``ore_person_visible(person id)``, ``ore_case_visible(case id)`` and
``ore_subject_visible(watch subject id)`` apply the cases' (or subjects') own rule: the
session's force or every force, and sealed rows only where sealed persons may be seen. They
run as the tables' owner (SECURITY DEFINER) so that the rule is applied once, explicitly.

Revision ID: 0101
Revises: 0100
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0101'
down_revision: Union[str, Sequence[str], None] = '0100'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APP_ROLE = "ore_app"
FORCE = "current_setting('ore.force', true)"
ALL_FORCES = f"({FORCE} = '*')"
SEALED_VISIBLE = "(current_setting('ore.sealed', true) = 'on')"
EVERYTHING = f"({ALL_FORCES} AND {SEALED_VISIBLE})"
ROW_RULE = f"({ALL_FORCES} OR x.force_code = {FORCE}) AND (NOT x.sealed OR {SEALED_VISIBLE})"
# function -> (table looked up, key column)
FUNCTIONS = {"ore_person_visible": ("cases", "person_id"), "ore_case_visible": ("cases", "id"),
             "ore_subject_visible": ("watch_subjects", "id")}
# table -> (policy name, function, the row's key)
TABLES = {
    "persons": ("ore_scope", "ore_person_visible", "persons.id"),
    "records": ("ore_scope", "ore_person_visible", "coalesce(records.person_id, records.subject_id)"),
    "holding_links": ("ore_scope", "ore_person_visible", "holding_links.person_id"),
    "recommendations": ("ore_scope", "ore_person_visible", "recommendations.person_id"),
    "changes": ("ore_scope", "ore_person_visible", "changes.person_id"),
    "disclosures": ("ore_scope", "ore_person_visible", "disclosures.person_id"),
    "transitions": ("ore_scope", "ore_case_visible", "transitions.case_id"),
    "safeguarding": ("ore_scope", "ore_case_visible", "safeguarding.case_id"),
    "watch_alerts": ("ore_watch_scope", "ore_subject_visible", "watch_alerts.subject_id"),
    "watch_alert_rows": ("ore_watch_scope", "ore_subject_visible", "watch_alert_rows.subject_id"),
    "cport_assessments": ("ore_watch_scope", "ore_subject_visible", "cport_assessments.subject_id"),
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name, (table, key) in FUNCTIONS.items():
        op.execute(f"""
            CREATE OR REPLACE FUNCTION {name}(k integer) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
                SELECT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = k AND {ROW_RULE})
            $$""")
        op.execute(f"REVOKE ALL ON FUNCTION {name}(integer) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name}(integer) TO {APP_ROLE}")
    for table, (policy, fn, key) in TABLES.items():
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"CREATE POLICY {policy} ON {table} USING ({EVERYTHING} OR {fn}({key})) "
                   f"WITH CHECK ({ALL_FORCES} OR {fn}({key}))")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    import importlib

    old = {**importlib.import_module("ore.store.migrations.versions.0002_access_and_audit").POLICIES,
           **importlib.import_module("ore.store.migrations.versions.0100_watch").POLICIES}
    for table, (policy, _, _) in TABLES.items():
        using, check = old[table]
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"CREATE POLICY {policy} ON {table} USING {using} WITH CHECK {check}")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}(integer)")
