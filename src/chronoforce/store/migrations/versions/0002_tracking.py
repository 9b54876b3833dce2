"""tracking: webhook inbox, support Cases per order, shared rate-limit windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_inbox",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("skybill_number", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_webhook_inbox_event_id")),
    )
    op.create_index("ix_webhook_inbox_state_id", "webhook_inbox", ["state", "id"])

    op.create_table(
        "tracking_case",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_key", sa.String(length=80), nullable=False),
        sa.Column("shipment_id", Id, nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=18), nullable=False),
        sa.Column("create_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=False),
        sa.Column(
            "opened_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipment.id"],
            name=op.f("fk_tracking_case_shipment_id_shipment"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_case")),
        sa.UniqueConstraint("order_key", name=op.f("uq_tracking_case_order_key")),
    )
    op.create_index(
        op.f("ix_tracking_case_shipment_id"), "tracking_case", ["shipment_id"], unique=False
    )

    op.create_table(
        "rate_window",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window", name=op.f("pk_rate_window")),
    )


def downgrade() -> None:
    op.drop_table("rate_window")
    op.drop_index(op.f("ix_tracking_case_shipment_id"), table_name="tracking_case")
    op.drop_table("tracking_case")
    op.drop_index("ix_webhook_inbox_state_id", table_name="webhook_inbox")
    op.drop_table("webhook_inbox")
