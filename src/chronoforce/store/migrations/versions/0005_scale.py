"""scale-out: retries, circuit breaker, leases (issue 9)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cluster_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("owner", sa.String(length=80), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_state")),
    )
    op.add_column("shipment", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("shipment", sa.Column("verify_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "shipment",
        sa.Column("last_error", sa.String(length=500), nullable=False, server_default=""),
    )
    op.add_column(
        "outbox",
        sa.Column("last_error", sa.String(length=500), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("last_error")
    with op.batch_alter_table("shipment") as batch:
        batch.drop_column("last_error")
        batch.drop_column("verify_at")
        batch.drop_column("queued_at")
    op.drop_table("cluster_state")
