"""Chrono Precise delivery slots (issue 23)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # One row per slot search of a shipment (its offer and transaction), filled in when one of
    # its slots is confirmed; the shipment's slot is its latest `confirmed` row.
    op.create_table(
        "delivery_slot",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("shipment_id", Id, nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column("product_type", sa.String(length=10), nullable=False),
        sa.Column("mesh_code", sa.String(length=20), nullable=False),
        sa.Column("transaction_id", sa.String(length=80), nullable=False),
        sa.Column("offered", sa.JSON(), nullable=False),
        sa.Column("slot_code", sa.String(length=40), nullable=False),
        sa.Column("slot_date", sa.Date(), nullable=True),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("tariff_level", sa.String(length=4), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("product_code", sa.String(length=4), nullable=False),
        sa.Column("service_code", sa.String(length=4), nullable=False),
        sa.Column("as_code", sa.String(length=4), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipment.id"],
            name=op.f("fk_delivery_slot_shipment_id_shipment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_slot")),
    )
    op.create_index("ix_delivery_slot_shipment_id", "delivery_slot", ["shipment_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_slot_shipment_id", table_name="delivery_slot")
    op.drop_table("delivery_slot")
