"""end-of-day slip (issue 21)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # One slip per account, sub-account, location, pickup day and version (pipeline/manifest.py).
    op.create_table(
        "manifest",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_number", sa.String(8), nullable=False),
        sa.Column("sub_account", sa.String(3), nullable=False),
        sa.Column("location", sa.String(40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parcel_count", sa.Integer(), nullable=False),
        sa.Column("total_weight_kg", sa.Numeric(10, 3), nullable=False),
        sa.Column("parcels_digest", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sf_id", sa.String(18), nullable=False, server_default=""),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest")),
        sa.UniqueConstraint(
            "account_number",
            "sub_account",
            "location",
            "day",
            "version",
            name="uq_manifest_group_version",
        ),
    )
    op.create_index("ix_manifest_day", "manifest", ["day"])


def downgrade() -> None:
    op.drop_index("ix_manifest_day", table_name="manifest")
    op.drop_table("manifest")
