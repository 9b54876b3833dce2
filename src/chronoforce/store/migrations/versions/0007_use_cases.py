"""carrier use cases behind the gates; a cancel queued until its window opens (issues 16, 18)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A cancel asked inside Chronopost's cancel window ([D] §2.6.4): sent when it opens.
    op.add_column("shipment", sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipment") as batch:
        batch.drop_column("cancel_at")
