"""The case store, first schema: operations, packages, imports, persons, recommendations,
records, holding links, changes, cases (versioned), transitions, safeguarding.

Times are naive UTC (ore.store.models.UTCDateTime reads them back as aware UTC).

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 16:26:28.234210

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    
    op.create_table('operations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operations')),
    sa.UniqueConstraint('name', name=op.f('uq_operations_name'))
    )
    op.create_table('packages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_ref', sa.String(length=200), nullable=False),
    sa.Column('operation_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('received', sa.Date(), nullable=True),
    sa.Column('first_imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['operation_id'], ['operations.id'], name=op.f('fk_packages_operation_id_operations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_packages')),
    sa.UniqueConstraint('package_ref', name=op.f('uq_packages_package_ref'))
    )
    op.create_table('imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('outdir', sa.Text(), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_imports_package_id_packages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imports'))
    )
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imports_package_id'), ['package_id'], unique=False)

    op.create_table('persons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('person_ref', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('postcode', sa.String(length=20), nullable=True),
    sa.Column('force_code', sa.String(length=20), nullable=True),
    sa.Column('force_name', sa.String(length=200), nullable=True),
    sa.Column('evidence_grade', sa.String(length=1), nullable=True),
    sa.Column('likely_victim', sa.Boolean(), nullable=False),
    sa.Column('grade_reasons', sa.Text(), nullable=True),
    sa.Column('identifiers', sa.Text(), nullable=True),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_persons_package_id_packages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons')),
    sa.UniqueConstraint('package_id', 'person_ref', name=op.f('uq_persons_package_id'))
    )
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_persons_person_ref'), ['person_ref'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('operation_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('s38_category', sa.String(length=20), nullable=False),
    sa.Column('recommended_band', sa.String(length=8), nullable=True),
    sa.Column('band', sa.String(length=8), nullable=True),
    sa.Column('band_confirmed', sa.Boolean(), nullable=False),
    sa.Column('force_code', sa.String(length=20), nullable=True),
    sa.Column('sealed', sa.Boolean(), nullable=False),
    sa.Column('elimination_ground', sa.String(length=40), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('triaged_at', sa.DateTime(), nullable=True),
    sa.Column('disseminated_at', sa.DateTime(), nullable=True),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('investigation_at', sa.DateTime(), nullable=True),
    sa.Column('first_action_at', sa.DateTime(), nullable=True),
    sa.Column('arrested_at', sa.DateTime(), nullable=True),
    sa.Column('interviewed_at', sa.DateTime(), nullable=True),
    sa.Column('charged_at', sa.DateTime(), nullable=True),
    sa.Column('cautioned_at', sa.DateTime(), nullable=True),
    sa.Column('nfa_at', sa.DateTime(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.Column('convicted_at', sa.DateTime(), nullable=True),
    sa.Column('acquitted_at', sa.DateTime(), nullable=True),
    sa.Column('eliminated_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['operation_id'], ['operations.id'], name=op.f('fk_cases_operation_id_operations')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_cases_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('person_id', name=op.f('uq_cases_person_id'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_operation_status', ['operation_id', 'status'], unique=False)

    op.create_table('changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('record_ref', sa.String(length=200), nullable=True),
    sa.Column('field', sa.String(length=60), nullable=False),
    sa.Column('old', sa.Text(), nullable=True),
    sa.Column('new', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name=op.f('fk_changes_import_id_imports')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_changes_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_changes'))
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_changes_import_id'), ['import_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_changes_person_id'), ['person_id'], unique=False)

    op.create_table('holding_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('holding', sa.String(length=20), nullable=False),
    sa.Column('ref', sa.String(length=200), nullable=False),
    sa.Column('match_probability', sa.Float(), nullable=False),
    sa.Column('match_weight', sa.Float(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_holding_links_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holding_links')),
    sa.UniqueConstraint('person_id', 'holding', 'ref', name=op.f('uq_holding_links_person_id'))
    )
    op.create_table('recommendations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('band', sa.String(length=8), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('sentences', sa.Text(), nullable=False),
    sa.Column('evidence_grade', sa.String(length=1), nullable=True),
    sa.Column('likely_victim', sa.Boolean(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name=op.f('fk_recommendations_import_id_imports')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_recommendations_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recommendations'))
    )
    with op.batch_alter_table('recommendations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recommendations_person_id'), ['person_id'], unique=False)

    op.create_table('records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('record_ref', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('transaction_time', sa.DateTime(), nullable=True),
    sa.Column('merchant', sa.String(length=200), nullable=True),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('product_category', sa.String(length=20), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('card_masked', sa.String(length=32), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('card_token', sa.String(length=64), nullable=True),
    sa.Column('card_key_version', sa.Integer(), nullable=True),
    sa.Column('fraud_score', sa.Float(), nullable=True),
    sa.Column('fraud_suspected', sa.Boolean(), nullable=False),
    sa.Column('indicators', sa.Text(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_records_package_id_packages')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_records_person_id_persons')),
    sa.ForeignKeyConstraint(['subject_id'], ['persons.id'], name=op.f('fk_records_subject_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records')),
    sa.UniqueConstraint('package_id', 'record_ref', name=op.f('uq_records_package_id'))
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_records_card_token'), ['card_token'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_subject_id'), ['subject_id'], unique=False)

    op.create_table('safeguarding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('children_identified', sa.Integer(), nullable=False),
    sa.Column('children_safeguarded', sa.Integer(), nullable=False),
    sa.Column('agency', sa.String(length=200), nullable=False),
    sa.Column('identified_on', sa.Date(), nullable=True),
    sa.Column('safeguarded_on', sa.Date(), nullable=True),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_safeguarding_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_safeguarding'))
    )
    with op.batch_alter_table('safeguarding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_safeguarding_case_id'), ['case_id'], unique=False)

    op.create_table('transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=30), nullable=True),
    sa.Column('to_status', sa.String(length=30), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('band', sa.String(length=8), nullable=True),
    sa.Column('force_code', sa.String(length=20), nullable=True),
    sa.Column('override_by', sa.String(length=200), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.Column('overridden_rule', sa.String(length=60), nullable=True),
    sa.Column('category_before', sa.String(length=20), nullable=True),
    sa.Column('category_after', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_transitions_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transitions')),
    sa.UniqueConstraint('case_id', 'seq', name=op.f('uq_transitions_case_id'))
    )
    


def downgrade() -> None:
    """Downgrade schema."""
    
    op.drop_table('transitions')
    with op.batch_alter_table('safeguarding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_safeguarding_case_id'))

    op.drop_table('safeguarding')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_records_subject_id'))
        batch_op.drop_index(batch_op.f('ix_records_person_id'))
        batch_op.drop_index(batch_op.f('ix_records_card_token'))

    op.drop_table('records')
    with op.batch_alter_table('recommendations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recommendations_person_id'))

    op.drop_table('recommendations')
    op.drop_table('holding_links')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_changes_person_id'))
        batch_op.drop_index(batch_op.f('ix_changes_import_id'))

    op.drop_table('changes')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_operation_status')

    op.drop_table('cases')
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persons_person_ref'))

    op.drop_table('persons')
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imports_package_id'))

    op.drop_table('imports')
    op.drop_table('packages')
    op.drop_table('operations')
    
