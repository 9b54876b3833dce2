"""operator fixes: retries read the record again, detection back-off (issue 17)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Set by a retry: the next preparation reads the record from Salesforce again first.
    op.add_column("shipment", sa.Column("reread_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipment") as batch:
        batch.drop_column("reread_at")
