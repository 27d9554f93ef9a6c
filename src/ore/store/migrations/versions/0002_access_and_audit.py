"""Access and audit: users, sign-in failures, sessions, API tokens, the hash-chained audit
log and its head, two-person approvals, disclosures; ``persons.erased_at``.

On PostgreSQL also the second wall of force scoping: an application role ``ore_app``
that does not own the tables, with row-level security on every table of personal data,
driven by transaction-local settings ``ore.force`` (a force code, or ``*`` for every
force) and ``ore.sealed`` (``on`` where sealed persons may be seen). With no setting,
no row is visible. ``ore_app`` may only insert into and read the audit log.

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APP_ROLE = "ore_app"
FORCE = "current_setting('ore.force', true)"
ALL_FORCES = f"({FORCE} = '*')"
SEALED_VISIBLE = "(current_setting('ore.sealed', true) = 'on')"
EVERYTHING = f"({ALL_FORCES} AND {SEALED_VISIBLE})"
# USING decides what a session may read, WITH CHECK what it may write. A case is read in the
# session's force (or all) and, if sealed, only where sealed persons may be seen; it is written
# only in the session's force, so an investigator who eliminates (and so seals) a case may.
POLICIES: dict[str, tuple[str, str]] = {
    "cases": (
        f"(({ALL_FORCES} OR force_code = {FORCE}) AND (NOT sealed OR {SEALED_VISIBLE}))",
        f"({ALL_FORCES} OR force_code = {FORCE})",
    ),
    "persons": (
        f"({EVERYTHING} OR EXISTS (SELECT 1 FROM cases c WHERE c.person_id = persons.id))",
        f"({ALL_FORCES} OR EXISTS (SELECT 1 FROM cases c WHERE c.person_id = persons.id))",
    ),
}
for _table, _col in (("records", "coalesce(records.person_id, records.subject_id)"),
                     ("holding_links", "holding_links.person_id"), ("recommendations", "recommendations.person_id"),
                     ("changes", "changes.person_id"), ("disclosures", "disclosures.person_id")):
    _via = f"EXISTS (SELECT 1 FROM persons p WHERE p.id = {_col})"
    POLICIES[_table] = (f"({EVERYTHING} OR {_via})", f"({ALL_FORCES} OR {_via})")
for _table in ("transitions", "safeguarding"):
    _via = f"EXISTS (SELECT 1 FROM cases c WHERE c.id = {_table}.case_id)"
    POLICIES[_table] = (f"({EVERYTHING} OR {_via})", f"({ALL_FORCES} OR {_via})")


def _postgres_security() -> None:
    op.execute(f"""
        DO $$ BEGIN
            CREATE ROLE {APP_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$""")
    # the connecting (migrating, owning) user may act as the application role
    op.execute(f"""
        DO $$ BEGIN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
        EXCEPTION WHEN others THEN NULL;
        END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}")  # append-only
    op.execute(f"REVOKE DELETE, TRUNCATE ON audit_head FROM {APP_ROLE}")
    for table, (using, check) in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY ore_scope ON {table} USING {using} WITH CHECK {check}")


def _drop_postgres_security() -> None:
    for table in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS ore_scope ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")


def upgrade() -> None:
    op.create_table('approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('object', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('approved_by', sa.String(length=80), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals'))
    )
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('objects', sa.Text(), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_username_at', 'audit_log', ['username', 'at'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('roles', sa.String(length=200), nullable=False),
    sa.Column('force_code', sa.String(length=20), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('locked_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_failures_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index(op.f('ix_login_failures_user_id'), 'login_failures', ['user_id'], unique=False)
    op.create_table('login_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_sessions_token_hash'))
    )
    op.create_index(op.f('ix_login_sessions_user_id'), 'login_sessions', ['user_id'], unique=False)
    op.create_table('disclosures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_seq', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('person_ref', sa.String(length=40), nullable=False),
    sa.Column('package_ref', sa.String(length=200), nullable=False),
    sa.Column('recipient', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_disclosures_person_id_persons'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosures'))
    )
    op.create_index(op.f('ix_disclosures_person_id'), 'disclosures', ['person_id'], unique=False)
    op.add_column('persons', sa.Column('erased_at', sa.DateTime(), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        _postgres_security()


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _drop_postgres_security()
    with op.batch_alter_table('persons') as batch:  # SQLite drops a column by copying the table
        batch.drop_column('erased_at')
    op.drop_index(op.f('ix_disclosures_person_id'), table_name='disclosures')
    op.drop_table('disclosures')
    op.drop_index(op.f('ix_login_sessions_user_id'), table_name='login_sessions')
    op.drop_table('login_sessions')
    op.drop_index(op.f('ix_login_failures_user_id'), table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_index(op.f('ix_api_tokens_user_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_index('ix_audit_log_username_at', table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('audit_head')
    op.drop_table('approvals')
