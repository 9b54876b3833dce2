"""label re-print by reservation (issue 21)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # One row per re-print request: the label Chronopost gave back (getReservedSkybill*), kept
    # so its Salesforce file is made from it and a repeated request answers it again.
    op.create_table(
        "label_reprint",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("request_key", sa.String(length=200), nullable=False),
        sa.Column("shipment_id", Id, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=50), nullable=False),
        sa.Column("skybill_numbers", sa.JSON(), nullable=False),
        sa.Column("label_format", sa.String(length=10), nullable=False),
        sa.Column("label_bytes", sa.LargeBinary(), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipment.id"],
            name=op.f("fk_label_reprint_shipment_id_shipment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_reprint")),
        sa.UniqueConstraint("request_key", name=op.f("uq_label_reprint_request_key")),
    )
    op.create_index(
        op.f("ix_label_reprint_shipment_id"), "label_reprint", ["shipment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_label_reprint_shipment_id"), table_name="label_reprint")
    op.drop_table("label_reprint")
