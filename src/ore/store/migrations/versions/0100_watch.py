"""The re-offending watch (issue 7): watched subjects, flags, screened feeds, alerts and their
rows, written-out leads, CPORT assessments.

On PostgreSQL the application role ``ore_app`` gets the rights it needs on these tables
only (re-granting on every table would undo 0002's append-only audit log), and row-level
security repeats the watch's scoping inside the database: a subject (and so its alerts,
their rows and its CPORT assessments) is seen in the force its alerts are routed to, or
by a role that reads every force; a sealed one only where sealed persons may be seen.
Flags, feeds and lead identities hold no personal data and are not scoped.

Revision ID: 0100
Revises: 0002
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0100'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APP_ROLE = "ore_app"
TABLES = ("watch_subjects", "watch_flags", "watch_feeds", "watch_alerts", "watch_alert_rows", "watch_leads",
          "cport_assessments")
FORCE = "current_setting('ore.force', true)"
ALL_FORCES = f"({FORCE} = '*')"
SEALED_VISIBLE = "(current_setting('ore.sealed', true) = 'on')"
EVERYTHING = f"({ALL_FORCES} AND {SEALED_VISIBLE})"
_SUBJECT = "EXISTS (SELECT 1 FROM watch_subjects s WHERE s.id = {col})"
POLICIES: dict[str, tuple[str, str]] = {
    "watch_subjects": (
        f"(({ALL_FORCES} OR force_code = {FORCE}) AND (NOT sealed OR {SEALED_VISIBLE}))",
        f"({ALL_FORCES} OR force_code = {FORCE})",
    ),
}
for _table, _col in (("watch_alerts", "watch_alerts.subject_id"), ("watch_alert_rows", "watch_alert_rows.subject_id"),
                     ("cport_assessments", "cport_assessments.subject_id")):
    _via = _SUBJECT.format(col=_col)
    POLICIES[_table] = (f"({EVERYTHING} OR {_via})", f"({ALL_FORCES} OR {_via})")


def _postgres_security() -> None:
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON {', '.join(t + '_id_seq' for t in TABLES)} TO {APP_ROLE}")
    for table, (using, check) in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY ore_watch_scope ON {table} USING {using} WITH CHECK {check}")


def _drop_postgres_security() -> None:
    for table in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS ore_watch_scope ON {table}")


def upgrade() -> None:
    op.create_table('watch_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=10), nullable=False),
    sa.Column('card_input', sa.String(length=10), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('screened_at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('engine', sa.String(length=10), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_feeds')),
    sa.UniqueConstraint('sha256', name=op.f('uq_watch_feeds_sha256'))
    )
    op.create_table('watch_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('shown', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('package_ref', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('added_by', sa.String(length=200), nullable=False),
    sa.Column('added_at', sa.DateTime(), nullable=False),
    sa.Column('removed_by', sa.String(length=200), nullable=True),
    sa.Column('removed_at', sa.DateTime(), nullable=True),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_flags')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_watch_flags_kind'))
    )
    op.create_table('watch_leads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('row_key', sa.String(length=64), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('package_ref', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['watch_feeds.id'], name=op.f('fk_watch_leads_feed_id_watch_feeds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_leads')),
    sa.UniqueConstraint('row_key', name=op.f('uq_watch_leads_row_key'))
    )
    op.create_index(op.f('ix_watch_leads_feed_id'), 'watch_leads', ['feed_id'], unique=False)
    op.create_table('watch_subjects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('person_ref', sa.String(length=200), nullable=False),
    sa.Column('package_ref', sa.String(length=200), nullable=False),
    sa.Column('case_status', sa.String(length=30), nullable=False),
    sa.Column('force_code', sa.String(length=20), nullable=True),
    sa.Column('manager_force', sa.String(length=20), nullable=True),
    sa.Column('manager', sa.String(length=200), nullable=True),
    sa.Column('on_watch', sa.Boolean(), nullable=False),
    sa.Column('off_reason', sa.String(length=20), nullable=True),
    sa.Column('sealed', sa.Boolean(), nullable=False),
    sa.Column('first_watched_at', sa.DateTime(), nullable=False),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_watch_subjects_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_subjects')),
    sa.UniqueConstraint('case_id', name=op.f('uq_watch_subjects_case_id'))
    )
    op.create_index(op.f('ix_watch_subjects_person_ref'), 'watch_subjects', ['person_ref'], unique=False)
    op.create_table('cport_assessments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('young_at_index', sa.Integer(), nullable=True),
    sa.Column('prior_criminal_history', sa.Integer(), nullable=True),
    sa.Column('contact_sexual_offending', sa.Integer(), nullable=True),
    sa.Column('conditional_release_failure', sa.Integer(), nullable=True),
    sa.Column('sexual_interest_in_children', sa.Integer(), nullable=True),
    sa.Column('more_boy_content_images', sa.Integer(), nullable=True),
    sa.Column('more_boy_content_other', sa.Integer(), nullable=True),
    sa.Column('assessed_by', sa.String(length=200), nullable=False),
    sa.Column('assessed_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['watch_subjects.id'], name=op.f('fk_cport_assessments_subject_id_watch_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cport_assessments'))
    )
    op.create_index(op.f('ix_cport_assessments_subject_id'), 'cport_assessments', ['subject_id'], unique=False)
    op.create_table('watch_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('matched', sa.Text(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('flagged_rows', sa.Integer(), nullable=False),
    sa.Column('first_time', sa.DateTime(), nullable=True),
    sa.Column('last_time', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['feed_id'], ['watch_feeds.id'], name=op.f('fk_watch_alerts_feed_id_watch_feeds')),
    sa.ForeignKeyConstraint(['subject_id'], ['watch_subjects.id'], name=op.f('fk_watch_alerts_subject_id_watch_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_alerts')),
    sa.UniqueConstraint('subject_id', 'feed_id', name=op.f('uq_watch_alerts_subject_id'))
    )
    op.create_index(op.f('ix_watch_alerts_subject_id'), 'watch_alerts', ['subject_id'], unique=False)
    op.create_table('watch_alert_rows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('row_key', sa.String(length=64), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('transaction_time', sa.DateTime(), nullable=True),
    sa.Column('merchant', sa.String(length=200), nullable=True),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('card_masked', sa.String(length=32), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('username', sa.String(length=200), nullable=True),
    sa.Column('ip_address', sa.String(length=64), nullable=True),
    sa.Column('matched_on', sa.String(length=40), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['watch_alerts.id'], name=op.f('fk_watch_alert_rows_alert_id_watch_alerts')),
    sa.ForeignKeyConstraint(['subject_id'], ['watch_subjects.id'], name=op.f('fk_watch_alert_rows_subject_id_watch_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watch_alert_rows')),
    sa.UniqueConstraint('subject_id', 'row_key', name=op.f('uq_watch_alert_rows_subject_id'))
    )
    op.create_index(op.f('ix_watch_alert_rows_alert_id'), 'watch_alert_rows', ['alert_id'], unique=False)

    if op.get_context().dialect.name == "postgresql":
        _postgres_security()


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _drop_postgres_security()
    op.drop_index(op.f('ix_watch_alert_rows_alert_id'), table_name='watch_alert_rows')
    op.drop_table('watch_alert_rows')
    op.drop_index(op.f('ix_watch_alerts_subject_id'), table_name='watch_alerts')
    op.drop_table('watch_alerts')
    op.drop_index(op.f('ix_cport_assessments_subject_id'), table_name='cport_assessments')
    op.drop_table('cport_assessments')
    op.drop_index(op.f('ix_watch_subjects_person_ref'), table_name='watch_subjects')
    op.drop_table('watch_subjects')
    op.drop_index(op.f('ix_watch_leads_feed_id'), table_name='watch_leads')
    op.drop_table('watch_leads')
    op.drop_table('watch_flags')
    op.drop_table('watch_feeds')
