"""proof of delivery (issue 21)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The proof of delivery of a delivered shipment (pipeline/pod.py): its state, when it is
    # asked for next, why it stopped, and how many times Chronopost said "not ready yet".
    op.add_column("shipment", sa.Column("pod_status", sa.String(20), nullable=True))
    op.add_column("shipment", sa.Column("pod_next_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "shipment", sa.Column("pod_reason", sa.String(255), nullable=False, server_default="")
    )
    op.add_column(
        "shipment", sa.Column("pod_attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_index("ix_shipment_pod_next_at", "shipment", ["pod_next_at"])


def downgrade() -> None:
    op.drop_index("ix_shipment_pod_next_at", table_name="shipment")
    with op.batch_alter_table("shipment") as batch:
        batch.drop_column("pod_attempts")
        batch.drop_column("pod_reason")
        batch.drop_column("pod_next_at")
        batch.drop_column("pod_status")
